"""RDN-Boost: gradients, grounding, tree growth, planted rules, renaming, re-fitting, errors."""

from __future__ import annotations

import itertools
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from tlbench import ConfigError, IncompatibleTaskError
from tlbench.datasets.toy import TOY_RELATIONAL_MAPPING, toy_relational
from tlbench.errors import DataError
from tlbench.methods.relational import rdn_boost, relational_metrics
from tlbench.methods.relational.learner import positives, value_arg_types
from tlbench.methods.relational.rdn_boost import (
    EQUALS,
    Grounder,
    Literal,
    RDNBoost,
    RelationalRegressionTree,
    TreeNode,
    gradients,
    learn_rdn_boost,
    log_loss,
    parse_modes,
    read_modes,
    value_types,
    with_recursion,
)
from tlbench.registry import METHODS
from tlbench.task import Domain, RelationalData, TransferTask

REPO = Path(__file__).resolve().parents[1]


def _task(X: RelationalData, y: np.ndarray, test_fold: int = 1) -> TransferTask:
    """A task whose target trains on the other folds of ``X`` and tests on ``test_fold``."""
    whole = Domain(X, y, name=X.name)
    test = X.fold == test_fold
    return TransferTask(
        source=whole,
        target=whole.subset(np.flatnonzero(~test)),
        test=whole.subset(np.flatnonzero(test)),
        kind="relational",
        num_classes=2,
    )


def _planted(seed: int = 0, n_folds: int = 2) -> tuple[RelationalData, np.ndarray]:
    """Worlds where ``t(X, Y)`` holds iff ``p(X, Z)`` and ``q(Z, Y)`` for some ``Z``.

    Distractors: ``r(X, Y)`` random, ``u(X)`` random, ``s(Z, Y)`` random. Folds are separate
    worlds (their constants differ).
    """
    rng = np.random.default_rng(seed)
    facts: dict[str, list] = {k: [] for k in "pqrsu"}
    examples, labels, folds = [], [], []
    for k in range(n_folds):
        xs = [f"x{k}_{i}" for i in range(25)]
        zs = [f"z{k}_{i}" for i in range(12)]
        ys = [f"y{k}_{i}" for i in range(25)]
        p = {(x, z) for x in xs for z in rng.choice(zs, size=2, replace=False)}
        q = {(z, y) for z in zs for y in rng.choice(ys, size=2, replace=False)}
        facts["p"] += sorted(p)
        facts["q"] += sorted(q)
        facts["r"] += [(x, y) for x in xs for y in ys if rng.random() < 0.1]
        facts["s"] += [(z, y) for z in zs for y in ys if rng.random() < 0.1]
        facts["u"] += [(x,) for x in xs if rng.random() < 0.5]
        reach = {(x, y) for x, z in p for z2, y in q if z == z2}
        for x, y in itertools.product(xs, ys):
            examples.append((x, y))
            labels.append(int((x, y) in reach))
            folds.append(k)
    data = RelationalData(
        predicates={
            "p": ("person", "group"),
            "q": ("group", "item"),
            "r": ("person", "item"),
            "s": ("group", "item"),
            "u": ("person",),
            "t": ("person", "item"),
        },
        facts={k: tuple(v) for k, v in facts.items()},
        target="t",
        examples=tuple(examples),
        fold=np.asarray(folds),
        name="planted",
    )
    return data, np.asarray(labels)


def _rename_data(data: RelationalData, mapping: dict[str, str]) -> RelationalData:
    """The same world with predicates (and types) renamed by ``mapping``."""
    return replace(
        data,
        predicates={
            mapping.get(p, p): tuple(mapping.get(t, t) for t in ts)
            for p, ts in data.predicates.items()
        },
        facts={mapping.get(p, p): atoms for p, atoms in data.facts.items()},
        target=mapping.get(data.target, data.target),
    )


# --------------------------------------------------------------------------- the loss


def test_gradients_are_indicator_minus_probability():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    psi = rng.normal(0, 2, 50)
    want = np.where(y == 1, 1.0, 0.0) - 1.0 / (1.0 + np.exp(-psi))
    np.testing.assert_allclose(gradients(y, psi), want, atol=1e-12)
    # the gradient of the summed log-likelihood, by central differences, example by example
    h = 1e-6
    for i in range(len(y)):
        e = np.zeros(len(y))
        e[i] = h
        numeric = (log_loss(y, psi - e) - log_loss(y, psi + e)) * len(y) / (2 * h)
        assert numeric == pytest.approx(gradients(y, psi)[i], abs=1e-6)


def test_each_tree_reduces_the_training_loss_and_prediction_reproduces_training():
    task = toy_relational(n_entities=30, seed=1)
    method = RDNBoost(neg_pos_ratio=None).fit(task.without_test())
    loss = method.diagnostics_["train_loss"]
    assert len(loss) == method.n_trees + 1
    assert loss[0] == pytest.approx(np.log(2), abs=1e-5)  # psi_0 = 0
    assert all(b < a for a, b in itertools.pairwise(loss)), loss
    # routing the training examples through the fitted trees gives the training psi
    train = task.target
    psi = method.model_.predict_logits(train.X)
    assert log_loss(train.y, psi) == pytest.approx(loss[-1], abs=1e-5)
    d = method.diagnostics_
    assert d["n_trees"] == 10 and d["n_leaves"] == d["n_nodes"] + 10  # binary trees
    assert d["train_seconds"] >= 0 and "trees" in d


def test_grounder_coverage_equals_brute_force():
    data, _ = _planted(seed=3, n_folds=1)
    g = Grounder(data)
    facts = {p: set(a) for p, a in data.facts.items()}
    clauses = [
        (Literal("p", (0, 2)), Literal("q", (2, 1))),
        (Literal("p", (0, 2)), Literal("s", (2, 3)), Literal("r", (0, 3))),
        (Literal("r", (0, 1)), Literal("u", (0,))),
        (Literal("p", (0, 2)), Literal("p", (3, 2)), Literal("r", (3, 1))),
    ]
    rows = g.head_rows()
    for clause in clauses:
        ext = g.extend(rows, clause)
        got = np.zeros(len(data), dtype=bool)
        got[ext[:, 0]] = True
        for n, ex in enumerate(data.examples[:200]):
            # depth-first search for a grounding of the clause
            def ground(k, theta, clause=clause):
                if k == len(clause):
                    return True
                lit = clause[k]
                for atom in facts[lit.predicate]:
                    new = dict(theta)
                    pairs = zip(lit.args, atom, strict=True)
                    if all(new.setdefault(a, c) == c for a, c in pairs) and ground(k + 1, new):
                        return True
                return False

            assert got[n] == ground(0, {0: ex[0], 1: ex[1]}), (clause, ex)
    # a head-constant test and a constant argument
    keep = g.test(rows, Literal(EQUALS, (1, data.examples[0][1])))
    assert keep.sum() == sum(ex[1] == data.examples[0][1] for ex in data.examples)
    assert not g.test(rows, Literal("p", (0, "no_such_constant"))).any()


def test_leaf_index_with_projection_and_chunks_equals_the_plain_walk(monkeypatch):
    data, y = _planted(seed=2)
    g = Grounder(data)
    leaf = TreeNode
    # fan-out chains: Z (2) is read by the true branch, W (3) only inside its conjunction
    chain = leaf(
        (Literal("u", (0,)),),
        true=leaf(
            (Literal("p", (0, 2)), Literal("p", (3, 2)), Literal("r", (3, 1))),
            true=leaf((Literal("s", (2, 1)),), true=leaf(value=1.0), false=leaf(value=2.0)),
            false=leaf((Literal("r", (0, 2)),), true=leaf(value=3.0), false=leaf(value=4.0)),
        ),
        false=leaf((Literal("r", (0, 2)), Literal("s", (3, 2))), true=leaf(), false=leaf()),
    )
    trees = [RelationalRegressionTree(chain, "t", 2)]
    trees += RDNBoost(n_trees=3, random_state=0).fit(_task(data, y)).model_.trees
    for tree in trees:
        want = tree.leaf_index(g, len(data), project=False)  # every grounding carried
        assert (want >= 0).all()
        np.testing.assert_array_equal(tree.leaf_index(g, len(data)), want)
        np.testing.assert_array_equal(tree.leaf_index(g, len(data), cap=10**9), want)
        monkeypatch.setattr(rdn_boost, "LEAF_CHUNK", 7)
        np.testing.assert_array_equal(tree.leaf_index(g, len(data)), want)
        monkeypatch.setattr(rdn_boost, "JOIN_BUDGET", 5)  # joins in slices of a few rows
        np.testing.assert_array_equal(tree.leaf_index(g, len(data)), want)
        monkeypatch.setattr(rdn_boost, "ROW_BUDGET", 6)  # chunks split down to one example
        np.testing.assert_array_equal(tree.leaf_index(g, len(data)), want)
        monkeypatch.undo()
    assert len(set(trees[0].leaf_index(g, len(data), project=False))) == 6  # all leaves reached


def test_projected_rows_are_deduplicated_as_numpy_unique_does(monkeypatch):
    # grounding rows: (example index, head arguments fixed by the index, body variables)
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_head, n_body, n = (
            int(rng.integers(1, 3)),
            int(rng.integers(0, 4)),
            int(rng.integers(2, 300)),
        )
        idx = rng.integers(0, 30, n)
        head = np.stack([(idx * (j + 7)) % 11 for j in range(n_head)], axis=1)
        body = rng.integers(-1, int(rng.integers(1, 6)), (n, n_body))
        body[:, rng.random(n_body) < 0.3] = -1  # columns projected out before
        rows = np.column_stack([idx, head, body]).astype(np.int64)
        keep = {v for v in range(n_head, n_head + n_body) if rng.random() < 0.5}
        dedupe = bool(rng.random() < 0.5)
        given = rows.copy()
        got = rdn_boost._project(rows, keep, n_head, dedupe)
        np.testing.assert_array_equal(rows, given)  # the caller's rows are left alone
        with monkeypatch.context() as m:  # the reference: rows sorted as records
            m.setattr(rdn_boost, "_first_rows", lambda rows, cols: None)
            np.testing.assert_array_equal(got, rdn_boost._project(rows, keep, n_head, dedupe))
    # a key that would not fit in 62 bits falls back to the records
    wide = np.array([[0, 1, 2**40, 2**40], [0, 1, 2**40, 2**40], [0, 1, 3, 2**40]])
    np.testing.assert_array_equal(
        rdn_boost._project(wide, {1, 2}, 1, dedupe=True), np.unique(wide, axis=0)
    )


# --------------------------------------------------------------------------- learning


def test_planted_two_literal_rule_is_recovered():
    data, y = _planted(seed=0)
    task = _task(data, y)
    method = RDNBoost(neg_pos_ratio=None).fit(task.without_test())
    root = method.model_.trees[0].root
    assert set(root.test) == {Literal("p", (0, 2)), Literal("q", (2, 1))}
    assert root.true.is_leaf and root.false.is_leaf  # nothing else explains the labels
    p = method.predict_proba(task.test.X)[:, 1]
    m = relational_metrics(task.test.y, p)
    assert m["auc_roc"] > 0.99 and m["auc_pr"] > 0.95
    # one literal per test: the join is built down a path, p(A,C) and then q(C,B) below it
    single = RDNBoost(neg_pos_ratio=None, node_size=1).fit(task.without_test())
    root = single.model_.trees[0].root
    assert len(root.test) == 1 and root.test[0].predicate in ("p", "q")
    assert {lit.predicate for lit in root.true.test} == {"p", "q"} - {root.test[0].predicate}


def test_declared_modes_restrict_the_literals():
    data, y = _planted(seed=0)
    task = _task(data, y)
    # q only with both arguments bound: p(A,C), q(C,B) stays reachable, s never used
    modes = ["p(+person,-group)", "q(+group,+item)", "u(+person)"]
    method = RDNBoost(neg_pos_ratio=None, modes=modes).fit(task.without_test())
    assert method.model_.predicates() <= {"p", "q", "u"}
    assert method.diagnostics_["modes"].startswith("declared")
    assert set(method.model_.trees[0].root.test) == {Literal("p", (0, 2)), Literal("q", (2, 1))}

    def walk(node, n_vars):  # p(+person,-group): a bound person, a new group, everywhere
        if node.is_leaf:
            return
        k = n_vars
        for lit in node.test:
            if lit.predicate == "p":
                assert lit.args[0] < k and lit.args[1] == k, lit
            k = max(k, max(lit.variables()) + 1)
        walk(node.true, k)
        walk(node.false, n_vars)

    for tree in method.model_.trees:
        walk(tree.root, 2)
    # without q(+,+) the rule is out of reach
    blind = RDNBoost(neg_pos_ratio=None, modes=["p(+person,-group)", "u(+person)"])
    blind.fit(task.without_test())
    assert "q" not in blind.model_.predicates()


def test_parse_and_read_modes(tmp_path):
    text = """
    // setParam: nodeSize=1.
    mode: hasposition(+Person, +Position!1).
    mode: hasposition(+Person, #Position).
    /* mode: ignored(+a).
    */
    mode: movie(-movie,+person).mode: movie(+movie,-person).
    """
    modes = parse_modes(text)
    assert modes == {
        "hasposition": [("+", "+"), ("+", "#")],
        "movie": [("-", "+"), ("+", "-")],
    }
    assert parse_modes(["movie(+m,-p)"]) == {"movie": [("+", "-")]}
    with pytest.raises(ConfigError, match="must start with"):
        parse_modes("mode: movie(m, -p).")
    path = tmp_path / "dom.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Dom/train/train_bk.txt", text)
        zf.writestr("Dom/train/train_pos.txt", "t(a).\n")
    assert read_modes(path) == modes
    with pytest.raises(ConfigError, match="no file"):
        read_modes(tmp_path / "missing.zip")


def test_value_type_constants_and_head_tests():
    # accounttype(A, B): most accounts are fans, so B = fan is informative by itself; the
    # words an account tweets (constants of a value type) tell its type
    accounts = [f"a{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    kinds = ("fan",) * 6 + ("news",) * 3 + ("bot",)
    kind = {a: kinds[i % 10] for i, a in enumerate(accounts)}
    tweets = tuple((a, f"w{kind[a]}{j}") for a in accounts for j in range(2))
    examples = tuple((a, k) for a in accounts for k in ("fan", "news", "bot"))
    y = np.array([int(kind[a] == k) for a, k in examples])
    fold = np.array([int(rng.random() < 0.4) for _ in examples])
    data = RelationalData(
        predicates={"tweets": ("account", "word"), "accounttype": ("account", "type")},
        facts={"tweets": tweets},
        target="accounttype",
        examples=examples,
        fold=fold,
        name="tw",
    )
    model = learn_rdn_boost(data, y, n_trees=3)
    assert "type" in model.info["value_types"]
    used = {lit for t in model.trees for n in t.nodes() for lit in n.test}
    assert any(lit.predicate == EQUALS for lit in used)
    assert any(lit.predicate == "tweets" and isinstance(lit.args[1], str) for lit in used)
    # negatives that pair an account with an account (the recorded TreeBoostler runs'
    # generator) put 10 accounts into the type "type"; its constants still come from the
    # facts and the positives, so the head tests B = fan etc. stay available
    wrong = tuple((a, b) for a in accounts for b in accounts[:10] if a != b)
    mixed = replace(data, examples=examples + wrong, fold=None)
    y_mixed = np.concatenate([y, np.zeros(len(wrong), dtype=int)])
    assert "type" not in value_types(mixed, 10)
    assert value_types(mixed, 10, y_mixed)["type"] == ["bot", "fan", "news"]
    model = learn_rdn_boost(mixed, y_mixed, n_trees=3)
    assert any(lit.predicate == EQUALS for t in model.trees for n in t.nodes() for lit in n.test)


def test_a_value_argument_with_many_constants_gets_head_tests():
    # proteinclass(P, C) with 30 classes (more than max_constants = 10), C used by no other
    # predicate: the class is the example's only link to its label, so without the head
    # tests C = c (the clause learner's value-argument rule) every class looks the same.
    # Proteins 0..89 belong to the three classes c0..c2, proteins 90..119 to c3..c29; each
    # protein's negative pairs it with one of c3..c29.
    classes = [f"c{k}" for k in range(30)]
    proteins = [f"p{i}" for i in range(120)]
    cls = {p: classes[i % 3 if i < 90 else 3 + (i - 90) % 27] for i, p in enumerate(proteins)}
    wrong = [(p, classes[3 + i % 27]) for i, p in enumerate(proteins)]
    examples = tuple((p, cls[p]) for p in proteins) + tuple(e for e in wrong if cls[e[0]] != e[1])
    y = np.array([int(cls[p] == c) for p, c in examples])
    data = RelationalData(
        predicates={
            "interaction": ("protein", "protein"),
            "proteinclass": ("protein", "class"),
        },
        facts={"interaction": tuple(zip(proteins, proteins[1:], strict=False))},
        target="proteinclass",
        examples=examples,
        fold=None,
        name="yeastlike",
    )
    assert value_arg_types(data) == {"class"}
    assert "class" not in value_types(data, 10, y)
    assert value_types(data, 10, y, max_value_arg_constants=200)["class"] == sorted(classes)
    # the recursion facts copy the target's types: they are not "another predicate"
    rec = with_recursion(data, positives(data, y))
    assert value_arg_types(rec) == {"class"}

    def auc(model):
        return relational_metrics(y, expit(model.predict_logits(data)))["auc_roc"]

    with_tests = learn_rdn_boost(data, y, n_trees=3, max_value_arg_constants=200)
    without = learn_rdn_boost(data, y, n_trees=3)
    assert "class" in with_tests.info["value_types"]
    assert "class" not in without.info["value_types"]
    assert auc(with_tests) > 0.85 > 0.7 > auc(without)


# --------------------------------------------------------------------------- TreeBoostler hooks
# --------------------------------------------------------------------------- TreeBoostler hooks


def test_rename_then_predict_gives_identical_probabilities():
    task = toy_relational(n_entities=30, seed=2)
    method = RDNBoost().fit(task.without_test())
    model = method.model_
    before = [t.describe() for t in model.trees]
    back = {v: k for k, v in TOY_RELATIONAL_MAPPING.items()}  # network -> epidemic names
    assert model.target == "compromised" and model.predicates() & set(back)
    renamed = model.rename(back)
    assert [t.describe() for t in model.trees] == before  # the original is untouched
    assert renamed.target == "infected"
    assert renamed.predicates() <= {"contact", "carrier", "vaccinated", "household"}
    data = task.test.X
    p = expit(model.predict_logits(data))
    p_renamed = expit(renamed.predict_logits(_rename_data(data, back)))
    np.testing.assert_array_equal(p, p_renamed)
    with pytest.raises(DataError, match="lacks|scores"):
        renamed.predict_logits(data)  # the source world has none of the renamed predicates
    with pytest.raises(ConfigError, match="no predicate"):
        model.rename({"link": None})
    with pytest.raises(ConfigError, match="to one"):
        model.rename({"malicious": "patched"})


def test_refit_leaves_reproduces_the_fit_and_adapts_to_new_data():
    task = toy_relational(n_entities=30, seed=3)
    method = RDNBoost(neg_pos_ratio=None).fit(task.without_test())
    model = method.model_
    train = task.target
    again = model.refit_leaves(train.X, train.y)
    for a, b in zip(model.trees, again.trees, strict=True):
        np.testing.assert_allclose(
            [leaf.value for leaf in a.leaves()], [leaf.value for leaf in b.leaves()], atol=1e-12
        )
    # with labels flipped the same structure re-learns negated values: the loss goes down
    flipped = 1 - train.y
    refit = model.refit_leaves(train.X, flipped)
    assert log_loss(flipped, refit.predict_logits(train.X)) < log_loss(
        flipped, model.predict_logits(train.X)
    )
    assert [t.n_tests for t in refit.trees] == [t.n_tests for t in model.trees]
    with pytest.raises(DataError, match="labels"):
        model.refit_leaves(train.X, train.y[:-1])


# --------------------------------------------------------------------------- errors and contract


def test_bad_input_is_a_one_line_error():
    task = toy_relational(n_entities=20)
    target = task.target
    no_pos = replace(task, target=replace(target, y=np.zeros_like(target.y)))
    with pytest.raises(DataError, match="no positive") as err:
        RDNBoost().fit(no_pos.without_test())
    assert "\n" not in str(err.value) and "'compromised'" in str(err.value)
    with pytest.raises(IncompatibleTaskError, match="target"):
        RDNBoost().fit(replace(task, target=target.unlabeled()).without_test())
    with pytest.raises(DataError, match="target predicate 'nope'") as err:
        replace(target.X, target="nope")  # unknown target predicate
    assert "\n" not in str(err.value)
    method = RDNBoost(n_trees=2).fit(task.without_test())
    source = task.source.X  # the epidemic world: another target predicate
    with pytest.raises(DataError, match="predicts 'compromised'"):
        method.predict_proba(source)
    with pytest.raises(ConfigError, match="n_trees"):
        RDNBoost(n_trees=0).fit(task.without_test())
    with pytest.raises(ConfigError, match="init"):
        RDNBoost(init="prior").fit(task.without_test())
    with pytest.raises(ConfigError, match="declare none"):
        RDNBoost(modes=["foo(+a,-b)"]).fit(task.without_test())


def test_contract_registry_and_yaml():
    assert METHODS.get("rdn_boost") is RDNBoost
    method = RDNBoost()
    assert clone(method).get_params() == method.get_params()
    task = toy_relational(n_entities=20)
    with pytest.raises(NotFittedError):
        method.predict(task.test.X)
    a = RDNBoost().fit(task.without_test()).predict_proba(task.test.X)
    b = RDNBoost().fit(task.without_test()).predict_proba(task.test.X)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    conf = yaml.safe_load((REPO / "conf" / "method" / "rdn_boost.yaml").read_text())
    assert conf.pop("_target_") == "tlbench.methods.relational.rdn_boost.RDNBoost"
    assert conf.pop("random_state") == "${seed}"  # the run's seed, as every method's
    assert conf == {k: v for k, v in method.get_params().items() if k != "random_state"}
