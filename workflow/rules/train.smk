# Neural generators: one job trains a chunk of replicas as one ensemble (GPU when present).
# Its only declared output is the chunk's flag; replica files (weights, losses, status,
# checkpoints while training) sit in each replica's folder and survive a failed job, so a rerun
# resumes from the checkpoints and skips finished replicas.


rule train:
    output:
        TRAINED_FLAG,
    wildcard_constraints:
        setting=setting_regex(neural=True),
    params:
        spec=train_spec_json,
        results=results_root,
    log:
        f"{RESULTS}/logs/train/{{setting}}/{{chunk}}.log",
    threads: rule_threads("train")
    resources:
        **rule_resources("train"),
        runtime=train_minutes,
    conda:
        "../../envs/ganplify.yaml"
    shell:
        "ganplify train --spec {params.spec:q} --results {params.results} --output {output} "
        "--threads {threads} > {log} 2>&1"
