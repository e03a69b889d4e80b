# ganplify: thin entry point. Config -> validation (workflow/rules/common.smk) -> rules -> all.
# Run: snakemake --cores all            (quick default, config/config.yaml)
#      snakemake --cores all --configfile config/paper.yaml
from snakemake.utils import min_version

min_version("9.0")


# The quick default applies only without --configfile: another config file then replaces it
# rather than being deep-merged into it (Snakemake's behaviour for two config files).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plots.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
