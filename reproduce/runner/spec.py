"""What a paper table is, for the shared runner: its rows, arms, configs, metrics, paper numbers and scales.

A table crosses *rows* (detectors, models) with *arms* (the baseline and BatchFormerV2; later, variants) and
seeds. Every run is one (row, arm, seed) and trains one config. The runner (:mod:`reproduce.runner.cli`) does
the rest the same way for every table; a table module (``reproduce/tables/<name>.py``) only fills in a
:class:`TableSpec`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Arm:
    """One column group of a table: the runs of one kind.

    Attributes:
        value: its value in the CSV's arm column (detection: ``bf`` = 0 or 1).
        tag: its part of a run's name (``DETR-base-s0``, ``DETR-bf-s0``).
        label: its name in the table's header (``baseline``, ``+BF``).
        name: its name in the table's notes (``baseline``, ``BF``).
        first_stage_from: for a table with a first stage (``TableSpec.pre_stage``): the value of the arm whose run of
            the same row and seed trains the first stage that this arm's runs start from (DETR panoptic: a plain mask
            head on the BatchFormerV2 box model); None: each run trains its own.
    """
    value: int
    tag: str
    label: str
    name: str
    first_stage_from: Optional[int] = None


@dataclass(frozen=True)
class Scale:
    """One scale of a table: its data, default rows and seeds, and what it changes in the configs.

    Attributes:
        data: ``'canvas'`` (the Fashion-MNIST canvases, made by the runner when the folder is absent or empty),
            ``'coco'`` (a COCO-format dataset the user provides), ``'fashion_mnist'`` (Fashion-MNIST's own files,
            read as they are: the classification mini benchmark) or ``'imagenet'`` (mmpretrain's ImageNet
            layout, which the user provides).
        data_root: the default dataset folder, relative to the repository; None for ``'fashion_mnist'`` (its
            installed place, ``$FASHION_MNIST_DIR`` or the Debian package's folder).
        seeds: seeds per (row, arm) by default.
        rows: the rows trained by default.
        canvas_preset: the ``fashion_canvas.PRESETS`` entry the runner generates (``data='canvas'``).
        overrides: applied to every run's config at this scale (the smoke scale's tiny schedule), or None.
        banner: printed above the table and in it (the smoke scale's warning), or None.
        pretrain_backbones: make missing Fashion-MNIST-pretrained backbone checkpoints first.
        one_run_per_gpu: runs are pinned to one GPU each and spread over the visible GPUs (else one run takes
            ``--gpus`` GPUs through torchrun).
        cpu_only: hide the GPUs from the runs.
        arms: the arm values trained at this scale (None: every arm of the table).
    """
    data: str
    data_root: Optional[str]
    seeds: int
    rows: Tuple[str, ...]
    canvas_preset: Optional[str] = None
    overrides: Optional[Callable] = None
    banner: Optional[str] = None
    pretrain_backbones: bool = False
    one_run_per_gpu: bool = True
    cpu_only: bool = False
    arms: Optional[Tuple[int, ...]] = None


@dataclass(frozen=True)
class Borrow:
    """Runs this table shares with another table: arms whose runs that table already trains with the same configs
    (the ablation's baseline and default arms are the detection table's rows). A stored row of that table for the
    same row, seed, config, schedule, fingerprint and data counts as this table's run instead of training it again;
    it is copied into this table's CSV with the column ``borrowed_from`` naming the CSV's stem.

    Attributes:
        table: the other table's module under ``reproduce/tables/`` (its ``SPEC``).
        arms: this table's arm value -> that table's arm value.
    """
    table: str
    arms: Dict[int, int]


@dataclass(frozen=True)
class TableSpec:
    """A paper table.

    Attributes:
        name: file stem of its outputs: ``results/measured/<name>_<scale>.csv``, ``results/tables/<name>_<scale>.md``,
            ``results/logs/<name>_<scale>/``; also the work folder ``work_dirs/table_<name>/``.
        title: the table's heading (``Detection``).
        row_column: the CSV column naming a run's row (``detector``); also the table's first header.
        row_option: the command-line option that selects rows (``--detectors``).
        rows: every row the table knows.
        arm_column: the CSV column holding an arm's value (``bf``).
        arms: the arms, the reference (baseline) first.
        config: ``config(row, arm, scale)`` -> repository-relative config path.
        metrics: CSV column -> the key of its value in mmengine's validation log (stored times
            ``metric_scale``). The first is the primary metric: the table's mean and interval columns, the
            finished-run check.
        metric_scale: what a logged value is multiplied by to give points (mmdet's fractions: 100; mmpretrain's
            percentages: 1).
        delta_metrics: further metrics whose paired difference the table shows.
        mean_metrics: further metrics whose per-arm mean the table shows.
        unit: what the numbers are, for the table's legend (``AP points``).
        delta_meaning: what a Δ is, for the legend (``BatchFormerV2 − baseline``).
        paper_csv: repository-relative CSV of the published numbers (columns ``method``, the arm column, the
            metrics, ``source``).
        paper_setting: where the paper's numbers come from, for the legend.
        chance: a primary metric below this did not learn (its baseline row is flagged).
        scales: ``smoke``, ``mini``, ``full``.
        artifacts: files a run writes into its work directory that are kept with its logs
            (``<logs>/<run>.<file>``), e.g. ``grad_per_class.json``.
        render: ``render(df, paper, spec, scale, banner) -> markdown`` for the table, or None for the default
            (:func:`reproduce.runner.results.render_table`: one line per row, the arms side by side).
        borrow: finished runs taken from another table's CSV (:class:`Borrow`), or None.
        pre_stage: ``pre_stage(row, arm, scale)`` -> the config of a first training stage, or None: each run
            first trains that config in ``<work_dir>/stage1/`` and its own config then starts from the stage's
            final checkpoint (``load_from``; DETR panoptic: the box model, then the mask head). The run's
            fingerprint covers both configs; its time, both stages.
        row_arms: row -> the arm values it trains, for a row that trains fewer than every arm (the ablation's
            second detector: the baseline, the default and the variants that moved the first one).
    """
    name: str
    title: str
    row_column: str
    row_option: str
    rows: Tuple[str, ...]
    arm_column: str
    arms: Tuple[Arm, ...]
    config: Callable[[str, Arm, str], str]
    metrics: Dict[str, str]
    metric_scale: float = 100.0
    delta_metrics: Tuple[str, ...] = ()
    mean_metrics: Tuple[str, ...] = ()
    unit: str = 'points'
    delta_meaning: str = 'BatchFormerV2 − baseline'
    paper_csv: str = ''
    paper_setting: str = ''
    chance: float = 1.0
    scales: Dict[str, Scale] = field(default_factory=dict)
    artifacts: Tuple[str, ...] = ()
    render: Optional[Callable] = None
    borrow: Optional[Borrow] = None
    pre_stage: Optional[Callable[[str, Arm, str], str]] = None
    row_arms: Dict[str, Tuple[int, ...]] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        return next(iter(self.metrics))

    @property
    def key_columns(self) -> Sequence[str]:
        return [self.row_column, self.arm_column, 'seed']

    def __post_init__(self):
        values = {arm.value for arm in self.arms}
        for row, arms in self.row_arms.items():
            if row not in self.rows or not set(arms) <= values:
                raise ValueError(f'{self.name}: row_arms[{row!r}] = {arms}: rows are {list(self.rows)}, arm values '
                                 f'{sorted(values)}')
        owners = {arm.value: arm.first_stage_from for arm in self.arms}
        for arm in self.arms:
            owner = arm.first_stage_from
            if owner is None:
                continue
            if self.pre_stage is None or owner == arm.value or owner not in owners or owners[owner] is not None:
                raise ValueError(f'{self.name}: arm {arm.tag!r} takes its first stage from arm {owner}: that must be '
                                 'another arm of the table with a first stage of its own (pre_stage)')
            for row, arms in self.row_arms.items():
                if arm.value in arms and owner not in arms:
                    raise ValueError(f'{self.name}: row_arms[{row!r}] has arm {arm.tag!r} without arm {owner}, whose '
                                     'run trains its first stage')

    def arms_of(self, row: str) -> Tuple[Arm, ...]:
        """The arms ``row`` trains: those ``row_arms`` names for it, else every arm."""
        values = self.row_arms.get(row)
        return self.arms if values is None else tuple(arm for arm in self.arms if arm.value in values)

    def first_stage_owner(self, arm: Arm) -> Arm:
        """The arm whose runs train the first stage that ``arm``'s runs start from (``arm`` itself unless it shares)."""
        return arm if arm.first_stage_from is None else self.arm(arm.first_stage_from)

    def arm(self, value: int) -> Arm:
        for arm in self.arms:
            if arm.value == value:
                return arm
        raise KeyError(f'{self.name}: no arm with {self.arm_column}={value}')
