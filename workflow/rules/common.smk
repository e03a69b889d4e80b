# Validation and job expansion. The logic lives in the ganplify package (ganplify.config,
# ganplify.study); this file only turns it into paths and lookups for the rules.
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from ganplify.study import config as gconfig
from ganplify import figures as gfigures
from ganplify.analysis import fit_uncertainty as gfit_uncertainty
from ganplify import generators as ggenerators
from ganplify.results import layout as glayout
from ganplify.results import io as gio
from ganplify.results import manifest as gmanifest
from ganplify import slurm as gslurm
from ganplify.study import plan as gstudy
from ganplify.study import repair as grepair

try:
    # Snakemake has parsed the config files already, keeping the last of duplicate keys;
    # reading them again strictly refuses duplicates and alias bombs (gconfig.read).
    for _path in workflow.configfiles:
        gconfig.read(_path)
    STUDY = gconfig.validate(config)
except gconfig.ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None
# the report's captions read snakemake.config: give them the validated values, defaults filled
config.update(STUDY)

RESULTS = f"results/{STUDY['study']}"
CHUNKS = gstudy.plan(STUDY)
FIGURES = gfigures.planned(STUDY)
# tables/fit_uncertainty.csv and tables/fit_parameters.csv, where the study runs the fit
FIT_TABLES = (
    [f"{RESULTS}/{glayout.table(t)}" for t in gfit_uncertainty.TABLES]
    if gfit_uncertainty.applies(STUDY)
    else []
)
# (setting folder, chunk name) -> chunk, for the rules' parameter lookups
_CHUNK_BY_KEY = {
    (c.setting.relpath.removeprefix(f"{glayout.REPLICAS}/"), c.name): c for c in CHUNKS
}
CONFIG = f"{RESULTS}/{glayout.CONFIG}"
TABLE = {name: f"{RESULTS}/{glayout.table(name)}" for name in glayout.TABLES}
# job flags with the rules' wildcards (setting: the folder below replicas/)
SETTING = f"{RESULTS}/{glayout.REPLICAS}/{{setting}}"
TRAINED_FLAG = glayout.trained_flag(SETTING, "{chunk}")
EVALUATED_FLAG = glayout.evaluated_flag(SETTING, "{chunk}", "{ehash}")


wildcard_constraints:
    chunk=glayout.CHUNK_PATTERN,
    ehash=glayout.EHASH_PATTERN,


def setting_regex(neural):
    """Wildcard pattern of a setting folder whose generator is (not) neural."""
    names = [n for n, g in ggenerators.REGISTRY.items() if g.neural == neural]
    return glayout.setting_pattern(names)


def chunk_of(wildcards):
    try:
        return _CHUNK_BY_KEY[(wildcards.setting, wildcards.chunk)]
    except KeyError:
        raise WorkflowError(
            f"replicas/{wildcards.setting}/{wildcards.chunk} is not a job of study "
            f"{STUDY['study']!r}; request the study's targets (rule all) instead"
        ) from None


def results_root(wildcards, output):
    """The study's results folder, from a rule's first output path."""
    path = Path(output[0])
    for parent in path.parents:
        if parent.parent == Path("results"):
            return str(parent)
    raise WorkflowError(f"{path} is not inside results/<study>/")


def spec_json(wildcards):
    return json.dumps(chunk_of(wildcards).spec(), separators=(",", ":"))


def train_spec_json(wildcards):
    return json.dumps(chunk_of(wildcards).spec("train"), separators=(",", ":"))


def train_minutes(wildcards):
    """Time limit of a training job (minutes): see resources.train in the config schema."""
    return gstudy.train_minutes(STUDY, chunk_of(wildcards))


def rule_resources(rule):
    """Resource keywords of a rule's jobs (GPU, partition, account; see ganplify.slurm)."""
    return {k: v for k, v in gslurm.job_resources(STUDY, rule).items() if k != "runtime"}


def rule_threads(rule):
    return STUDY["resources"][rule]["cpus"]


onstart:
    # Before any job of a real run with local jobs: the device must exist here (SLURM jobs
    # run elsewhere). Not at parsing: the executor is known only now.
    if workflow.executor_plugin.common_settings.local_exec and workflow.is_main_process:
        try:
            gconfig.check_device(STUDY)
        except gconfig.ConfigError as exc:
            raise WorkflowError(f"invalid config: {exc}") from None
    # Before any job of a real run on SLURM: fail fast, with one message, when the cluster
    # cannot run the study as configured (see ganplify.slurm.preflight).
    if getattr(workflow.executor_plugin, "name", None) == "slurm" and workflow.is_main_process:
        if not gslurm.normalise_plugin_job_states():
            logger.warning(
                "ganplify: could not patch the SLURM plugin's status query; a job "
                "cancelled with scancel may leave this run waiting"
            )
        try:
            gslurm.preflight(
                STUDY,
                [r for r in gslurm.RULES if any(rule_of(c) == r for c in CHUNKS)],
                workflow.executor_settings.status_command,
                max((gstudy.train_minutes(STUDY, c) for c in CHUNKS), default=60),
            )
        except gslurm.SlurmError as exc:
            raise WorkflowError(f"SLURM preflight: {exc}") from None
    if workflow.is_main_process:
        try:  # one run at a time per results folder, for as long as this process lives
            _LOCK = gio.lock_folder(RESULTS)
        except gio.ResultsError as exc:
            raise WorkflowError(str(exc)) from None
        # Snakemake deletes MANIFEST.sha256 before remaking it; the journal keeps what it
        # vouched for, so that the new manifest can cover the files it listed
        gmanifest.carry_forward(RESULTS)


onsuccess:
    # A run that reports success has made what it was asked for: after one SIGINT, the next
    # run exited 0 without the study's tables.
    if workflow.is_main_process and any(j.rule.name == "all" for j in workflow.dag.targetjobs):
        _missing = [f for f in final_outputs() if not Path(f).exists()]
        if _missing:
            # Snakemake 9 reruns a job an interrupted run left incomplete, and nothing else
            raise WorkflowError(
                f"the run ended without {len(_missing)} of the study's outputs, e.g. "
                f"{_missing[0]} (Snakemake reran only the jobs an interrupted run left "
                "incomplete); run the same command again to make the rest"
            )


def rule_of(chunk):
    return "train" if ggenerators.get(chunk.setting.generator).neural else "baseline"


def evaluated_flags():
    return [f"{RESULTS}/{c.evaluated_flag}" for c in CHUNKS]


def fit_flags():
    """Evaluation flags of the fit's chunks: their jobs write the fit.json files."""
    return [
        f"{RESULTS}/{c.evaluated_flag}"
        for c in CHUNKS
        if ggenerators.get(c.setting.generator).fit_parameters
    ]


def figure_tables(name):
    """The tables a figure is drawn from."""
    return [f"{RESULTS}/{glayout.table(t)}" for t in gfigures.FIGURES[name].tables]


def figure_files(name):
    return [f"{RESULTS}/{glayout.figure(name, s)}" for s in ("png", "pdf")]


def final_outputs():
    out = [f"{RESULTS}/{f}" for f in (glayout.CONFIG, glayout.PROVENANCE, glayout.MANIFEST)]
    out += [f"{RESULTS}/{glayout.table(t)}" for t in ("mse", "amplification", "replicas")]
    out += FIT_TABLES
    for name in FIGURES:
        out += figure_files(name)
    return out


# Before anything runs, also a dry run (Snakemake never calls onstart when it finds nothing to
# do): a file changed outside the workflow since the last manifest stops it, so that the
# manifest at a run's end never covers an edit (`ganplify accept` takes an intended one in);
# replica files lost after their job finished get that job rerun, and a config snapshot that is
# not the study's config is written again (a copied folder carries no .snakemake records).
# Not in SLURM job processes.
if workflow.is_main_process:
    _problems = gmanifest.changes(RESULTS)
    if _problems:
        raise WorkflowError(gmanifest.refusal(RESULTS, _problems))
    for _line in grepair.reopen(RESULTS, CHUNKS):
        logger.warning(f"ganplify: {_line}")
    _line = grepair.stale_config(RESULTS, STUDY)
    if _line:
        logger.warning(f"ganplify: {_line}")
