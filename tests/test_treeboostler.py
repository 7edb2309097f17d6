"""TreeBoostler: the tree mapping search, the mapped trees, revision, the scarce split, errors.

The planted task renames the predicates, the type and the constants of a ``toy_relational``
source world (``tests/test_relational_mapping.py``'s), so the right mapping is known and the
mapped trees must score on the renamed copy exactly as the source trees do on the source.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import expit
from sklearn.base import clone

from tlbench.datasets.relational import fold_task
from tlbench.datasets.toy import TOY_RELATIONAL_MAPPING, toy_relational
from tlbench.errors import ConfigError, DataError, IncompatibleTaskError
from tlbench.methods.relational.metrics import relational_metrics
from tlbench.methods.relational.rdn_boost import (
    Literal,
    RDNBoostModel,
    RelationalRegressionTree,
    TreeNode,
    log_loss,
)
from tlbench.methods.relational.treeboostler import (
    TreeBoostler,
    map_trees,
    revise_trees_by_purity,
    split_validation,
    worst_leaf,
)
from tlbench.registry import METHODS
from tlbench.task import Domain, RelationalData, TransferTask

REPO = Path(__file__).resolve().parents[1]

#: The planted renaming of the epidemic world's predicates and its one type.
RENAME = {
    "infected": "sick",
    "contact": "meets",
    "household": "roommate",
    "carrier": "spreader",
    "vaccinated": "immune",
}
TYPE_RENAME = {"person": "agent"}


def _rename(data: RelationalData) -> RelationalData:
    """``data`` with predicates, the type and constants renamed (same facts, same examples)."""

    def const(c: str) -> str:
        return f"z{c[::-1]}"

    return RelationalData(
        predicates={
            RENAME[p]: tuple(TYPE_RENAME[t] for t in ts) for p, ts in data.predicates.items()
        },
        facts={RENAME[p]: tuple(tuple(map(const, a)) for a in g) for p, g in data.facts.items()},
        target=RENAME[data.target],
        examples=tuple(tuple(map(const, a)) for a in data.examples),
        fold=data.fold,
        name=f"{data.name}_renamed",
    )


def _planted(seed: int = 0, n_entities: int = 30) -> tuple[TransferTask, Domain]:
    """Source: folds 1, 2 of an epidemic world; target: their renamed copy; test: fold 0 renamed.

    Returns the task and the source's own fold 0.
    """
    world = toy_relational(n_entities=n_entities, seed=seed).source
    renamed = Domain(_rename(world.X), world.y, name="renamed")
    train, test = np.flatnonzero(world.X.fold != 0), np.flatnonzero(world.X.fold == 0)
    task = TransferTask(
        source=world.subset(train),
        target=renamed.subset(train),
        test=renamed.subset(test),
        kind="relational",
        num_classes=2,
        protocol="inductive",
    )
    return task, world.subset(test)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_renaming_is_recovered_exactly_by_the_tree_search(seed):
    task, _ = _planted(seed)
    method = TreeBoostler(revision="none").fit(task.without_test())
    used = method.source_model_.predicates()
    assert used, "the source trees test no predicate: nothing to recover"
    assert method.mapping_ == {"infected": "sick", **{p: RENAME[p] for p in used}}
    assert method.type_mapping_ == TYPE_RENAME
    d = method.diagnostics_
    assert d["n_source_trees"] == 10 and d["n_mapped_nodes"] == d["n_source_nodes"] > 0
    assert d["n_nodes_dropped_by_mapping"] == 0 and d["unmapped_predicates"] == []
    assert d["score"] > d["score_no_tests"]  # the trees fit better than their bare leaves


def test_beam_search_recovers_the_same_renaming():
    task, _ = _planted(0)
    exhaustive = TreeBoostler(revision="none").fit(task.without_test())
    beam = TreeBoostler(revision="none", max_exhaustive=1, beam_width=1).fit(task.without_test())
    assert beam.diagnostics_["search"] == "beam (width 1)"
    assert beam.mapping_ == exhaustive.mapping_


def test_toy_network_mapping_is_recovered():
    task = toy_relational(n_entities=30, seed=1)
    method = TreeBoostler(revision="weights").fit(task.without_test())
    used = method.source_model_.predicates() | {"infected"}
    assert method.mapping_ == {p: TOY_RELATIONAL_MAPPING[p] for p in used}


def test_mapped_trees_score_on_the_renamed_copy_as_the_source_model_on_the_source():
    task, source_test = _planted(0)
    method = TreeBoostler(revision="none").fit(task.without_test())
    p_source = expit(method.source_model_.predict_logits(source_test.X))
    p_mapped = method.predict_proba(task.test.X)[:, 1]
    np.testing.assert_allclose(p_mapped, p_source, atol=1e-12)
    assert np.ptp(p_mapped) > 0  # not a constant model


def test_revision_weights_equals_refit_leaves():
    task, _ = _planted(1)
    method = TreeBoostler(revision="weights", neg_pos_ratio=None).fit(task.without_test())
    mapped, _ = map_trees(method.source_model_, method.mapping_)
    want = mapped.refit_leaves(task.target.X, task.target.y)
    for a, b in zip(method.model_.trees, want.trees, strict=True):
        assert a.describe() == b.describe()
    np.testing.assert_allclose(
        method.model_.predict_logits(task.test.X), want.predict_logits(task.test.X), atol=1e-12
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_revision_ignores_the_test_fold_and_keeps_the_training_fit(seed):
    task = toy_relational(n_entities=30, seed=seed)
    full = TreeBoostler(revision="full", neg_pos_ratio=None).fit(task)
    # the test labels permuted (and the test set dropped) change nothing
    rng = np.random.default_rng(seed)
    shuffled = replace(task, test=replace(task.test, y=rng.permutation(task.test.y)))
    again = TreeBoostler(revision="full", neg_pos_ratio=None).fit(shuffled)
    blind = TreeBoostler(revision="full", neg_pos_ratio=None).fit(task.without_test())
    p = full.predict_proba(task.test.X)
    np.testing.assert_array_equal(p, again.predict_proba(task.test.X))
    np.testing.assert_array_equal(p, blind.predict_proba(task.test.X))
    weights = TreeBoostler(revision="weights", neg_pos_ratio=None).fit(task.without_test())
    X, y = task.target.X, task.target.y
    assert (
        log_loss(y, full.model_.predict_logits(X))
        <= log_loss(y, weights.model_.predict_logits(X)) + 1e-12
    )
    d = full.diagnostics_
    assert d["n_revision_points"] > 0 and {"n_pruned", "n_expanded"} <= d.keys()


def test_full_revision_changes_trees_somewhere():
    # able to fail: on a tiny target, revision finds something to prune or expand
    changed = []
    for seed in range(3):
        task = toy_relational(n_entities=30, seed=seed)
        d = TreeBoostler(revision="full").fit(task.without_test()).diagnostics_
        changed.append(d["n_pruned"] + d["n_expanded"])
    assert sum(changed) > 0


def _no_compatible_target() -> TransferTask:
    """A source whose trees use unary and (person, person) predicates; a target with none."""
    task, _ = _planted(0, n_entities=20)
    tgt = task.target.X
    target = RelationalData(
        predicates={"sick": ("agent",), "owns": ("agent", "thing")},
        facts={"owns": tuple((ex[0], "box") for ex in tgt.examples[::3])},
        target="sick",
        examples=tgt.examples,
        fold=tgt.fold,
        name="incompatible",
    )
    return replace(task, target=Domain(target, task.target.y, name="incompatible"), test=None)


@pytest.mark.parametrize("revision", ["none", "weights", "full"])
def test_no_compatible_mapping_is_a_one_line_error(revision):
    with pytest.raises(IncompatibleTaskError, match="survives the mapping") as err:
        TreeBoostler(revision=revision).fit(_no_compatible_target())
    assert "\n" not in str(err.value)


def test_bad_input_is_a_one_line_error():
    task, _ = _planted(0, n_entities=20)
    task = task.without_test()
    negatives = np.flatnonzero(task.target.y == 0)
    with pytest.raises(DataError, match="target predicate 'sick' has no positive"):
        TreeBoostler().fit(replace(task, target=task.target.subset(negatives)))
    with pytest.raises(IncompatibleTaskError, match="needs labeled target samples"):
        TreeBoostler().fit(replace(task, target=task.target.unlabeled()))
    tgt = task.target.X
    pair = replace(
        tgt,
        predicates={**tgt.predicates, "pair": ("agent", "agent")},
        target="pair",
        examples=tuple((a[0], a[0]) for a in tgt.examples),
    )
    with pytest.raises(IncompatibleTaskError, match="differ in arity"):
        TreeBoostler().fit(replace(task, target=Domain(pair, task.target.y)))
    with pytest.raises(ConfigError, match="revision"):
        TreeBoostler(revision="all").fit(task)
    with pytest.raises(ConfigError, match="validation_fraction"):
        TreeBoostler(validation_fraction=1.0).fit(task)
    with pytest.raises(ConfigError, match="n_trees"):
        TreeBoostler(n_trees=0).fit(task)


def test_scarce_split_trains_on_one_fold_and_tests_on_the_others():
    world = toy_relational(n_entities=30, n_folds=4, seed=0).source
    X, y = world.X, world.y
    info = {"n_folds": 4}
    for k in range(4):
        task = fold_task(X, y, info, X, y, info, 0, None, train_fold=k)
        assert task.info["train_folds"] == [k]
        assert task.info["test_folds"] == [f for f in range(4) if f != k]
        assert set(task.target.X.fold) == {k}
        assert k not in set(task.test.X.fold)
        assert len(task.target) + len(task.test) == len(y)  # every other example tests
    with pytest.raises(ConfigError, match="exclude"):
        fold_task(X, y, info, X, y, info, 0, 1, train_fold=0)
    with pytest.raises(ConfigError, match="train_fold"):
        fold_task(X, y, info, X, y, info, 0, None, train_fold=4)


@pytest.mark.realdata
def test_scarce_split_on_a_benchmark_domain(data_dir):
    from tlbench.datasets.relational import relational

    task = relational(source="imdb", target="uwcse", data_dir=data_dir, train_fold=2)
    assert task.info["train_folds"] == [2] and task.info["test_folds"] == [0, 1, 3, 4]
    assert set(task.target.X.fold) == {2} and 2 not in set(task.test.X.fold)
    train = set(task.target.X.examples)
    assert not train & set(task.test.X.examples)  # separate worlds: no atom shared


def test_contract_registry_and_yaml():
    assert METHODS.get("treeboostler") is TreeBoostler
    method = TreeBoostler()
    assert clone(method).get_params() == method.get_params()
    conf = yaml.safe_load((REPO / "conf" / "method" / "treeboostler.yaml").read_text())
    assert conf.pop("_target_") == "tlbench.methods.relational.treeboostler.TreeBoostler"
    assert conf.pop("random_state") == "${seed}"
    assert conf == {k: v for k, v in method.get_params().items() if k != "random_state"}


def test_a_mapping_that_grounds_past_the_limit_is_not_chosen():
    from tlbench.methods.relational.rdn_boost import GroundingLimit
    from tlbench.methods.relational.treeboostler import TreeMappingScorer

    task, _ = _planted(0)
    method = TreeBoostler(revision="none").fit(task.without_test())
    target = task.target
    scorer = TreeMappingScorer(method.source_model_, target.X, target.y, max_bindings=1)
    assert scorer.score(method.mapping_) == -np.inf and scorer.n_over_limit == 1
    deep = next(t for t in method.model_.trees if t.n_tests)
    with pytest.raises(GroundingLimit, match="more than 1 rows"):
        deep.leaf_index(scorer.grounder, len(target.y), cap=1)
    with pytest.raises(IncompatibleTaskError, match="max_mapping_bindings=1"):
        TreeBoostler(revision="none", max_mapping_bindings=1, same_target=True).fit(
            task.without_test()
        )


# --------------------------------------------------------------- the released revision loop


def _stump_model(target: str, arity: int, n_trees: int = 3) -> RDNBoostModel:
    """Trees that are one leaf each: the bias alone (every leaf a revision point)."""
    trees = [RelationalRegressionTree(TreeNode(), target, arity) for _ in range(n_trees)]
    return RDNBoostModel(target=target, arity=arity, trees=trees)


def _depth(node: TreeNode) -> int:
    return 0 if node.is_leaf else 1 + max(_depth(node.true), _depth(node.false))


def test_worst_leaf_is_the_least_pure_and_an_empty_leaf_counts_as_zero():
    tree = RelationalRegressionTree(
        TreeNode(test=(Literal("p", (0,)),), true=TreeNode(), false=TreeNode()), "t", 1
    )
    y = np.array([1, 1, 0, 0, 0, 1], dtype=float)
    # leaf 0: examples 0, 1 (pure); leaf 1: 2, 3, 4, 5 (3 of 4 negative)
    assert worst_leaf(tree, np.array([0, 0, 1, 1, 1, 1]), y) == (1, 0.75, {1})
    assert worst_leaf(tree, np.array([1, 1, 1, 1, 1, 1]), y) == (0, 0.0, {0, 1})
    assert worst_leaf(tree, np.array([0, 0, 1, 1, 1, 1]), np.array([1, 1, 0, 0, 0, 0.0])) == (
        None,
        1.0,
        set(),
    )


@pytest.mark.parametrize("criterion", ["auc_roc", "cll"])
def test_purity_revision_grows_the_bias_into_trees_within_the_limits(criterion):
    # able to fail: from trees that are the bias alone, every tree's one leaf is impure and
    # is grown into a subtree; the candidate must beat the bias on the validation part
    task = toy_relational(n_entities=30, seed=2)
    X, y = task.target.X, np.asarray(task.target.y)
    grow, valid = split_validation(y, 0.3, np.random.default_rng(0))
    start = _stump_model(X.target, len(X.predicates[X.target]))
    revised, counts = revise_trees_by_purity(
        start, X, y, grow, valid, max_depth=2, max_iterations=3, criterion=criterion,
        node_size=2, max_leaves=3, min_leaf_examples=2.0, max_constants=10,
        max_bindings=10**6,
    )  # fmt: skip
    assert counts["n_expanded"] > 0 and counts["n_revision_iterations"] >= 1
    assert all(_depth(t.root) <= 2 and len(t.leaves()) <= 3 for t in revised.trees)
    Xv, yv = X.subset(valid), y[valid]
    assert relational_metrics(yv, expit(revised.predict_logits(Xv)))["auc_roc"] > 0.6


@pytest.mark.parametrize("seed", [0, 2])
def test_purity_revision_ignores_the_test_fold_and_never_loses_on_validation(seed):
    task = toy_relational(n_entities=30, seed=seed)
    kw = dict(revision="full", revision_points="purity", neg_pos_ratio=None)
    full = TreeBoostler(**kw).fit(task)
    rng = np.random.default_rng(seed)
    shuffled = replace(task, test=replace(task.test, y=rng.permutation(task.test.y)))
    p = full.predict_proba(task.test.X)
    np.testing.assert_array_equal(p, TreeBoostler(**kw).fit(shuffled).predict_proba(task.test.X))
    # the candidates only replace the re-fitted mapped trees when validation AUC-ROC rises
    X, y = task.target.X, np.asarray(task.target.y)
    grow, valid = split_validation(y, 0.3, np.random.default_rng(seed))
    weights = TreeBoostler(revision="weights", neg_pos_ratio=None).fit(task.without_test())
    revised, counts = revise_trees_by_purity(
        weights.model_, X, y, grow, valid, max_depth=3, max_iterations=10, node_size=2,
        max_leaves=8, min_leaf_examples=2.0, max_constants=10, max_bindings=10**6,
    )  # fmt: skip
    start = weights.model_.refit_leaves(X.subset(grow), y[grow])  # where the search starts
    Xv, yv = X.subset(valid), y[valid]
    auc = [relational_metrics(yv, expit(m.predict_logits(Xv)))["auc_roc"] for m in (revised, start)]
    assert auc[0] >= auc[1]
    assert {"n_pruned", "n_expanded", "n_relearned", "n_revision_iterations"} <= counts.keys()


def test_purity_options_are_checked():
    task, _ = _planted(0, n_entities=20)
    with pytest.raises(ConfigError, match="revision_points"):
        TreeBoostler(revision_points="gain").fit(task.without_test())
    with pytest.raises(ConfigError, match="revision_criterion"):
        TreeBoostler(revision_criterion="f1").fit(task.without_test())
    with pytest.raises(ConfigError, match="max_revision_iterations"):
        TreeBoostler(max_revision_iterations=0).fit(task.without_test())
