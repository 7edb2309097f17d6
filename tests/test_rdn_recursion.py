"""Recursion in RDN-Boost and TreeBoostler: other atoms of the target, never the example's own."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from scipy.special import expit

from tlbench.errors import ConfigError, DataError
from tlbench.methods.relational import rdn_boost, relational_metrics
from tlbench.methods.relational.rdn_boost import (
    Grounder,
    Literal,
    RDNBoost,
    RelationalRegressionTree,
    TreeNode,
    recursion_predicate,
    with_recursion,
)
from tlbench.methods.relational.treeboostler import TreeBoostler
from tlbench.task import Domain, RelationalData, TransferTask

REC = recursion_predicate("t")


def _small_world(seed: int = 0) -> tuple[RelationalData, tuple[tuple[str, str], ...]]:
    """``t(person, label)`` examples, ``link(person, person)`` facts, some known target atoms."""
    rng = np.random.default_rng(seed)
    people, labels = [f"p{i}" for i in range(8)], ["l0", "l1", "l2"]
    links = {(a, b) for a in people for b in people if rng.random() < 0.3}
    links |= {(a, a) for a in people[:2]}  # a self-link: the path back to the example itself
    examples = tuple((p, c) for p in people for c in labels)
    known = tuple(e for e in examples if rng.random() < 0.4)
    data = RelationalData(
        predicates={"t": ("person", "label"), "link": ("person", "person")},
        facts={"link": tuple(sorted(links))},
        target="t",
        examples=examples,
    )
    return data, known


def _brute_force(data, known, test: tuple[Literal, ...]) -> np.ndarray:
    """Whether each example has a grounding of ``test`` with no recursion atom of its subject."""
    facts = {p: set(a) for p, a in data.facts.items()} | {REC: set(known)}
    consts = sorted({c for atoms in facts.values() for a in atoms for c in a})
    out = np.zeros(len(data.examples), dtype=bool)
    for i, ex in enumerate(data.examples):
        bindings = [dict(enumerate(ex))]
        for lit in test:  # extend every partial binding, literal by literal
            grown = []
            for b in bindings:
                free = sorted({a for a in lit.args if isinstance(a, int) and a not in b})
                for values in itertools.product(consts, repeat=len(free)):
                    b2 = {**b, **dict(zip(free, values, strict=True))}
                    atom = tuple(a if isinstance(a, str) else b2[a] for a in lit.args)
                    if atom in facts[lit.predicate] and not (
                        lit.predicate == REC and atom[0] == ex[0]
                    ):
                        grown.append(b2)
            bindings = grown
        out[i] = bool(bindings)
    return out


TESTS = [
    (Literal(REC, (0, 2)),),  # A has another known label: never (A's own subject)
    (Literal(REC, (2, 1)),),  # someone else is known to have label B
    (Literal(REC, (0, "l1")),),  # A is known to have label l1: never either
    (Literal("link", (0, 2)), Literal(REC, (2, "l1"))),  # a linked person has label l1
    (Literal("link", (0, 2)), Literal(REC, (2, 1))),  # a linked person has label B
    (Literal("link", (0, 2)), Literal(REC, (2, 3))),  # a linked person has some known label
]


@pytest.mark.parametrize("test", TESTS, ids=lambda t: ", ".join(lit.describe() for lit in t))
@pytest.mark.parametrize("project", [True, False])
def test_recursion_literal_never_grounds_an_atom_of_the_examples_subject(test, project):
    data, known = _small_world()
    world = with_recursion(data, known)
    tree = RelationalRegressionTree(TreeNode(test, TreeNode(), TreeNode()), "t", 2)
    got = tree.leaf_index(Grounder(world), len(data), project=project) == 0
    np.testing.assert_array_equal(got, _brute_force(data, known, test))
    own_subject = any(lit.predicate == REC and lit.args[0] == 0 for lit in test)
    assert got.any() != own_subject  # a test of A's own atoms never holds, the others do


def _homophily(
    seed: int = 0, n_groups: int = 12, size: int = 6
) -> tuple[RelationalData, np.ndarray]:
    """One world of groups linked inside; every member of a group has the group's label.

    Nothing but the links says anything about a label: a learner that cannot read the other
    atoms of the target ranks at chance. Folds 0 / 1 split the people of each group.
    """
    rng = np.random.default_rng(seed)
    labels = ["a", "b", "c"]
    links, examples, y, fold = [], [], [], []
    for g in range(n_groups):
        members = [f"g{g}m{i}" for i in range(size)]
        label = labels[g % len(labels)]  # as many groups per label: the prior says nothing
        links += [(u, v) for u in members for v in members if u != v and rng.random() < 0.7]
        for i, m in enumerate(members):
            for c in labels:
                examples.append((m, c))
                y.append(int(c == label))
                fold.append(i % 2)
    data = RelationalData(
        predicates={"t": ("person", "label"), "link": ("person", "person")},
        facts={"link": tuple(links)},
        target="t",
        examples=tuple(examples),
        fold=np.array(fold),
    )
    return data, np.array(y)


def _fold_task(data: RelationalData, y: np.ndarray, source=None) -> TransferTask:
    whole = Domain(data, y, name="homophily")
    train, test = np.flatnonzero(data.fold == 0), np.flatnonzero(data.fold == 1)
    return TransferTask(
        source=source if source is not None else whole.subset(train),
        target=whole.subset(train),
        test=whole.subset(test),
        kind="relational",
        num_classes=2,
    )


def test_recursion_reads_the_training_labels_of_neighbours():
    data, y = _homophily()
    task = _fold_task(data, y)
    scores = {}
    for recursion in (False, True):
        method = RDNBoost(recursion=recursion).fit(task.without_test())
        p = method.predict_proba(task.test.X)[:, 1]
        scores[recursion] = relational_metrics(task.test.y, p)["auc_roc"]
        assert method.diagnostics_["recursion"] is recursion
        assert (method.diagnostics_["n_recursive_nodes"] > 0) is recursion
    assert scores[False] < 0.65  # no feature but the links: chance
    assert scores[True] > 0.9


def test_recursive_trees_walk_the_same_in_slices_as_plainly(monkeypatch):
    data, y = _homophily(seed=4)
    model = RDNBoost(recursion=True).fit(_fold_task(data, y).without_test()).model_
    g = Grounder(with_recursion(data, model.evidence))
    monkeypatch.setattr(rdn_boost, "JOIN_BUDGET", 3)
    monkeypatch.setattr(rdn_boost, "LEAF_CHUNK", 5)
    for tree in model.trees:
        want = tree.leaf_index(g, len(data), project=False)
        np.testing.assert_array_equal(tree.leaf_index(g, len(data)), want)


def test_an_examples_own_label_never_moves_its_own_score():
    data, y = _homophily(seed=1)
    task = _fold_task(data, y)
    method = RDNBoost(recursion=True).fit(task.without_test())
    model, test = method.model_, task.test.X
    base = model._logits(Grounder(with_recursion(test, model.evidence)), len(test), model.trees)
    for i in np.flatnonzero(task.test.y == 1)[:6]:
        told = with_recursion(test, model.evidence + (test.examples[i],))
        psi = model._logits(Grounder(told), len(test), model.trees)
        assert psi[i] == pytest.approx(base[i], abs=1e-12)


def test_the_training_fit_does_not_memorise_the_labels():
    # labels independent of everything: reading one's own label would fit them perfectly
    data, _ = _homophily(seed=2)
    y = np.random.default_rng(0).integers(0, 2, len(data))
    method = RDNBoost(recursion=True, neg_pos_ratio=None).fit(_fold_task(data, y).without_test())
    assert method.diagnostics_["train_loss"][-1] > 0.4


def test_treeboostler_maps_recursion_to_the_targets_recursion():
    data, y = _homophily(seed=3)
    renamed = RelationalData(
        predicates={"u": ("agent", "kind"), "knows": ("agent", "agent")},
        facts={"knows": tuple((f"z{a}", f"z{b}") for a, b in data.facts["link"])},
        target="u",
        examples=tuple((f"z{a}", f"k{b}") for a, b in data.examples),
        fold=data.fold,
    )
    source = Domain(data, y, name="source")
    task = _fold_task(renamed, y, source=source)
    scores = {}
    for revision in ("none", "weights", "full"):
        method = TreeBoostler(revision=revision, recursion=True).fit(task.without_test())
        assert method.mapping_ == {"t": "u", "link": "knows", REC: "recursion_u"}
        assert method.diagnostics_["n_final_recursive_nodes"] > 0
        p = method.predict_proba(task.test.X)[:, 1]
        scores[revision] = relational_metrics(task.test.y, p)["auc_roc"]
    assert min(scores.values()) > 0.9  # the mapped trees read the target's known atoms
    # the mapped trees with source leaf values score as the source model does on the source
    source_model = method.source_model_
    source_test = Domain(data, y).subset(np.flatnonzero(data.fold == 1))
    p_source = expit(source_model.predict_logits(source_test.X))
    none = TreeBoostler(revision="none", recursion=True).fit(task.without_test())
    np.testing.assert_allclose(none.predict_proba(task.test.X)[:, 1], p_source, atol=1e-12)


def test_a_clashing_recursion_name_is_a_one_line_error():
    data, known = _small_world()
    clash = RelationalData(
        predicates={**data.predicates, REC: ("person",)},
        facts=data.facts,
        target="t",
        examples=data.examples,
    )
    with pytest.raises(DataError, match="recursion_t"):
        with_recursion(clash, known)
    with pytest.raises(DataError, match="arguments"):
        with_recursion(data, (("p0",),))


def test_gibbs_sampling_reads_the_known_atoms_and_is_seeded():
    data, y = _homophily(seed=5)
    task = _fold_task(data, y)
    iterative = RDNBoost(recursion=True).fit(task.without_test())
    gibbs = RDNBoost(recursion=True, recursive_inference="gibbs", gibbs_samples=10).fit(
        task.without_test()
    )
    p_it = iterative.predict_proba(task.test.X)[:, 1]
    p_gibbs = gibbs.predict_proba(task.test.X)[:, 1]
    # the same trees; only the filling-in of the predicted atoms differs
    assert gibbs.model_.describe() == iterative.model_.describe()
    assert not np.allclose(p_gibbs, p_it)
    assert relational_metrics(task.test.y, p_gibbs)["auc_roc"] > 0.75
    # without the known atoms the groups still agree, but nothing says on which label
    blind = expit(replace(gibbs.model_, evidence=()).predict_logits(task.test.X))
    assert relational_metrics(task.test.y, blind)["auc_roc"] < 0.65
    np.testing.assert_array_equal(p_gibbs, gibbs.predict_proba(task.test.X)[:, 1])
    assert np.all((p_gibbs > 0) & (p_gibbs < 1))


def test_gibbs_settings_are_checked():
    data, y = _homophily(seed=5)
    task = _fold_task(data, y).without_test()
    for bad, match in (
        ({"recursive_inference": "mcmc"}, "recursive_inference"),
        ({"gibbs_samples": 0}, "gibbs_samples"),
        ({"gibbs_burn_in": -1}, "gibbs_burn_in"),
    ):
        with pytest.raises(ConfigError, match=match):
            RDNBoost(recursion=True, **bad).fit(task)
        with pytest.raises(ConfigError, match=match):
            TreeBoostler(recursion=True, **bad).fit(replace(task, source=task.target))
