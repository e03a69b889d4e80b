# One rule per figure (ganplify.figures.FIGURES), each registered in the `snakemake --report`
# HTML report with its caption from workflow/report/<figure>.rst.

for _figure in FIGURES:

    rule:
        name:
            f"plot_{_figure}"
        input:
            figure_tables(_figure),
        output:
            report(
                f"{RESULTS}/{glayout.figure(_figure, 'png')}",
                caption=f"../report/{_figure}.rst",
                category="Figures",
            ),
            f"{RESULTS}/{glayout.figure(_figure, 'pdf')}",
        log:
            f"{RESULTS}/logs/plots/{_figure}.log",
        localrule: True
        conda:
            "../../envs/ganplify.yaml"
        params:
            figure=_figure,
            results=results_root,
            stem=lambda w, output: output[0].removesuffix(".png"),
        shell:
            "ganplify plot {params.figure} --results {params.results} "
            "--output {params.stem} > {log} 2>&1"
