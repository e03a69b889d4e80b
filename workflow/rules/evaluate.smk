# Neural generators: generate n_generated events per trained replica (batched over the chunk)
# and write each replica's MSE table. ancient(): a trained flag with a newer time (a copied
# results folder) never makes Snakemake regenerate.


rule evaluate:
    input:
        ancient(TRAINED_FLAG),
    output:
        EVALUATED_FLAG,
    log:
        f"{RESULTS}/logs/evaluate/{{setting}}/{{chunk}}.eval-{{ehash}}.log",
    wildcard_constraints:
        setting=setting_regex(neural=True),
    conda:
        "../../envs/ganplify.yaml"
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
        runtime=STUDY["resources"]["evaluate"]["minutes"],
    params:
        spec=spec_json,
        results=results_root,
    shell:
        "ganplify evaluate --spec {params.spec:q} --results {params.results} "
        "--output {output} --threads {threads} > {log} 2>&1"
