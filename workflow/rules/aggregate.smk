# From per-replica tables to the study's tables, provenance and manifest.


localrules:
    config_snapshot,
    aggregate,
    fit_uncertainty,
    provenance,
    manifest,


rule config_snapshot:
    output:
        CONFIG,
    log:
        f"{RESULTS}/logs/config_snapshot.log",
    conda:
        "../../envs/ganplify.yaml"
    params:
        config=json.dumps(STUDY, separators=(",", ":")),
    shell:
        "ganplify write-config --json {params.config:q} --output {output} > {log} 2>&1"


rule aggregate:
    input:
        config=CONFIG,
        flags=evaluated_flags(),
    output:
        mse=TABLE["mse"],
        amplification=report(
            TABLE["amplification"],
            caption="../report/amplification.rst",
            category="Tables",
        ),
        replicas=TABLE["replicas"],
        robustness=TABLE["robustness"],
        robustness_limits=TABLE["robustness_limits"],
        learning_curve=TABLE["learning_curve"],
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../envs/ganplify.yaml"
    params:
        results=results_root,
    shell:
        "ganplify aggregate --results {params.results} > {log} 2>&1"


# The fit's MSE as bias and variance, its HESSE errors against its replica spread
# (ganplify.analysis.fit_uncertainty); requested only when the study runs the fit (FIT_TABLES).
rule fit_uncertainty:
    input:
        config=CONFIG,
        flags=fit_flags(),
    output:
        uncertainty=report(
            TABLE["fit_uncertainty"],
            caption="../report/fit_uncertainty_table.rst",
            category="Tables",
        ),
        parameters=TABLE["fit_parameters"],
    log:
        f"{RESULTS}/logs/fit_uncertainty.log",
    conda:
        "../../envs/ganplify.yaml"
    params:
        results=results_root,
    shell:
        "ganplify fit-uncertainty --results {params.results} > {log} 2>&1"


rule provenance:
    input:
        rules.aggregate.output,
    output:
        f"{RESULTS}/{glayout.PROVENANCE}",
    log:
        f"{RESULTS}/logs/provenance.log",
    conda:
        "../../envs/ganplify.yaml"
    params:
        results=results_root,
    shell:
        "ganplify provenance --results {params.results} --output {output} > {log} 2>&1"


rule manifest:
    input:
        rules.aggregate.output,
        rules.provenance.output,
        FIT_TABLES,
        [f for name in FIGURES for f in figure_files(name)],
    output:
        f"{RESULTS}/{glayout.MANIFEST}",
    log:
        f"{RESULTS}/logs/manifest.log",
    conda:
        "../../envs/ganplify.yaml"
    params:
        results=results_root,
    shell:
        "ganplify manifest --results {params.results} > {log} 2>&1"
