# One rule per figure; each is registered in the `snakemake --report` HTML report.

localrules:
    fig1_camel_back,
    fig2_camel_back_mse,


rule fig1_camel_back:
    input:
        rules.aggregate.output.amplification,
    output:
        report(
            f"{RESULTS}/figures/fig1_camel_back.png",
            caption="../report/fig1_camel_back.rst",
            category="Camel back (d=1)",
        ),
        f"{RESULTS}/figures/fig1_camel_back.pdf",
    log:
        f"{RESULTS}/logs/plots/fig1_camel_back.log",
    params:
        results=results_root,
        stem=lambda w, output: output[0].removesuffix(".png"),
    conda:
        "../../envs/ganplify.yaml"
    shell:
        "ganplify plot fig1_camel_back --results {params.results} "
        "--output {params.stem} > {log} 2>&1"


rule fig2_camel_back_mse:
    input:
        rules.aggregate.output.amplification,
    output:
        report(
            f"{RESULTS}/figures/fig2_camel_back_mse.png",
            caption="../report/fig2_camel_back_mse.rst",
            category="Camel back (d=1)",
        ),
        f"{RESULTS}/figures/fig2_camel_back_mse.pdf",
    log:
        f"{RESULTS}/logs/plots/fig2_camel_back_mse.log",
    params:
        results=results_root,
        stem=lambda w, output: output[0].removesuffix(".png"),
    conda:
        "../../envs/ganplify.yaml"
    shell:
        "ganplify plot fig2_camel_back_mse --results {params.results} "
        "--output {params.stem} > {log} 2>&1"
