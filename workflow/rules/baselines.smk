# Cheap generators (the sample baseline, the fit): fit and evaluate a chunk of replicas in one
# CPU job. The job's only declared output is its evaluation flag; the replica files it writes
# (status.json, mse.csv, fit.json) sit in each replica's own folder.


rule baseline:
    output:
        EVALUATED_FLAG,
    log:
        f"{RESULTS}/logs/baseline/{{setting}}/{{chunk}}.eval-{{ehash}}.log",
    wildcard_constraints:
        setting=setting_regex(neural=False),
    conda:
        "../../envs/ganplify.yaml"
    threads: rule_threads("baseline")
    resources:
        **rule_resources("baseline"),
        runtime=STUDY["resources"]["baseline"]["minutes"],
    params:
        spec=spec_json,
        results=results_root,
    shell:
        "ganplify baseline --spec {params.spec:q} --results {params.results} --output {output} "
        "> {log} 2>&1"
