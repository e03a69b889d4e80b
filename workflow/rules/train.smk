# Neural generators: one job trains a chunk of replicas as one ensemble (GPU when present).
# Its only declared output is the chunk's flag; replica files (weights, losses, status,
# checkpoints while training) sit in each replica's folder and survive a failed job, so a rerun
# resumes from the checkpoints and skips finished replicas.


rule train:
    output:
        TRAINED_FLAG,
    log:
        f"{RESULTS}/logs/train/{{setting}}/{{chunk}}.log",
    wildcard_constraints:
        setting=setting_regex(neural=True),
    conda:
        "../../envs/ganplify.yaml"
    threads: rule_threads("train")
    resources:
        **rule_resources("train"),
        runtime=train_minutes,
    params:
        spec=train_spec_json,
        results=results_root,
    shell:
        "ganplify train --spec {params.spec:q} --results {params.results} --output {output} "
        "--threads {threads} > {log} 2>&1"
