"""Causal questions for generated episodes, answered from the simulator's ground truth.

Objects are referred to by colour and material (only objects that description names uniquely).
Predictive answers come from simulating the same seed past the clip's end; counterfactual
answers from re-simulating the seed without the named object (`options={"exclude_ids": [k]}`);
explanatory answers too: an object is responsible for a collision iff the collision does not
happen without it. Every question has one correct and one wrong option, so each option is
correct half the time; what the video shows as events (which pairs collided, in what order) is
balanced between the right and the wrong options (docs/results/qa-shortcuts.md).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from ia_world.data.episode import Episode, simulate_episode
from ia_world.errors import DataError
from ia_world.eval.features import dynamic_indices
from ia_world.eval.qa import OBJECTS, UNIQUE, Choice, Question

Pair = frozenset
PREDICTIVE_PER_CLIP = 3  # predictive questions per clip, each with different options
COUNTERFACTUAL_PER_OBJECT = 2  # counterfactual questions per removed object, each its own


def object_refs(episode: Episode) -> dict[int, tuple[str, list[str]]]:
    """Dynamic objects that colour + material name uniquely: id -> (text, program)."""
    dynamic = [o for o in episode.objects if not o.get("static", False)]
    keys = [(o["color"], o["material"]) for o in dynamic]
    return {o["id"]: (f"{o['color']} {o['material']} {o['shape']}",
                      [OBJECTS, o["color"], "filter_color", o["material"], "filter_material",
                       UNIQUE])
            for o, key in zip(dynamic, keys) if keys.count(key) == 1}


def collision_pairs(episode: Episode, start: int, stop: int) -> set[Pair]:
    """Pairs of dynamic objects that collide in frames [start, stop)."""
    dynamic = {o["id"] for o in episode.objects if not o.get("static", False)}
    return {Pair(c["object_ids"]) for c in episode.collisions
            if start <= c["frame"] < stop and set(c["object_ids"]) <= dynamic}


def event_choice(pair: Pair, refs: dict, correct: bool) -> Choice:
    """The option 'the A collides with the B' for a pair of referable objects."""
    a, b = sorted(pair)
    return Choice(f"the {refs[a][0]} collides with the {refs[b][0]}",
                  ["events", *refs[a][1], *refs[b][1], "filter_collision", "exist"], correct)


def descriptive_questions(episode: Episode, clip: int, num_frames: int, refs: dict,
                          rng: np.random.Generator) -> list[Question]:
    """'Does the A collide with another object?' with options yes / no."""
    collided = {i for pair in collision_pairs(episode, 0, num_frames) for i in pair}
    questions = []
    for obj, (text, program) in refs.items():
        truth = obj in collided
        choices = [Choice("yes", ["yes"], truth), Choice("no", ["no"], not truth)]
        questions.append(Question(clip, "descriptive", f"Does the {text} collide with another "
                                  "object?", [*program, "events", "filter_collision",
                                              "filter_object", "exist"],
                                  [choices[i] for i in rng.permutation(2)]))
    return questions


def clip_events(episode: Episode, num_frames: int) -> list[tuple[int, Pair]]:
    """(frame, pair) of every collision between dynamic objects in the first num_frames."""
    dynamic = {o["id"] for o in episode.objects if not o.get("static", False)}
    return [(c["frame"], Pair(c["object_ids"])) for c in episode.collisions
            if c["frame"] < num_frames and set(c["object_ids"]) <= dynamic]


def influencers(events: list[tuple[int, Pair]], objects: Pair, before: int) -> set[int]:
    """Objects linked to `objects` by a chain of collisions before frame `before` (CLEVRER's
    causal graph: the objects of every ancestor event), `objects` included."""
    linked = set(objects)
    for frame, pair in sorted(events, key=lambda e: -e[0]):
        if frame < before and pair & linked:
            linked |= pair
    return linked


def first_frames(events: list[tuple[int, Pair]], num_frames: int) -> dict[Pair, int]:
    """Each colliding pair's first collision frame; num_frames for pairs that never collide."""
    first = defaultdict(lambda: num_frames)
    for frame, pair in events:
        first[pair] = min(first[pair], frame)
    return first


def explanatory_questions(episode: Episode, clip: int, num_frames: int, refs: dict,
                          without: dict[int, set[Pair]]) -> list[Question]:
    """'Is the C responsible for the collision between A and B?' (yes / no), asked only of the
    objects C linked to A or B by earlier collisions (CLEVRER's causal graph), answered by
    re-simulation: yes iff A and B do not collide without C. Every candidate is in the graph,
    so seeing which collisions came first does not answer it; `balance` evens yes and no."""
    events = clip_events(episode, num_frames)
    questions = []
    for pair, frame in sorted(first_frames(events, num_frames).items(), key=lambda x: x[1]):
        if not pair <= refs.keys():
            continue
        a, b = sorted(pair)
        for cause in sorted((influencers(events, pair, frame) - pair) & refs.keys()):
            truth = pair not in without[cause]
            questions.append(Question(
                clip, "explanatory",
                f"Is the {refs[cause][0]} responsible for the collision between the "
                f"{refs[a][0]} and the {refs[b][0]}?",
                ["events", *refs[a][1], *refs[b][1], "filter_collision", "unique",
                 *refs[cause][1], "filter_responsible", "exist"],
                [Choice("yes", ["yes"], truth), Choice("no", ["no"], not truth)]))
    return questions


def event_question(clip: int, qtype: str, text: str, program: list[str], happened: set[Pair],
                   candidates: list[Pair], refs: dict, rng: np.random.Generator,
                   stratum=None, limit: int = 1) -> list[Question]:
    """Up to `limit` questions whose options are collisions (correct iff the pair is in
    `happened`), each with its own correct and wrong option. stratum(pair) -> key: the two
    options of a question share their key (what the video shows of them), so the key does not
    tell the right option from the wrong one."""
    groups = defaultdict(lambda: ([], []))
    for p in candidates:
        groups[stratum(p) if stratum else None][p in happened].append(p)
    pairs = [([right[i] for i in rng.permutation(len(right))],
              [wrong[i] for i in rng.permutation(len(wrong))])
             for _, (wrong, right) in sorted(groups.items(), key=lambda g: str(g[0]))
             if right and wrong]
    matched = [[event_choice(r, refs, True), event_choice(w, refs, False)]
               for i in rng.permutation(len(pairs)) for r, w in zip(*pairs[i])]
    return [Question(clip, qtype, text, program, [pair[i] for i in rng.permutation(2)])
            for pair in matched[:limit]]


def predictive_questions(env: gym.Env, episode: Episode, clip: int, num_frames: int,
                         horizon: int, refs: dict, rng: np.random.Generator) -> list[Question]:
    """'What will happen next?': collisions in the `horizon` frames after the clip."""
    future = simulate_episode(env, episode.meta["seed"], num_frames + horizon, render=False)
    if not np.array_equal(future.states["position"][:num_frames],
                          episode.states["position"][:num_frames]):
        raise DataError(f"episode seed {episode.meta['seed']}: the env does not reproduce it "
                        "(different env id or kwargs)")
    candidates = [Pair(p) for p in combinations(sorted(refs), 2)]
    return event_question(clip, "predictive", "What will happen next?",
                          ["events", "get_future", "filter_collision"],
                          collision_pairs(future, num_frames, num_frames + horizon),
                          candidates, refs, rng, limit=PREDICTIVE_PER_CLIP)


def counterfactual_questions(episode: Episode, clip: int, num_frames: int, removed: int,
                             refs: dict, counterfactual: set[Pair],
                             rng: np.random.Generator) -> list[Question]:
    """'What will happen without the K?': collisions when the seed is re-simulated without K
    (`counterfactual`, their pairs). Both options of a question agree on whether their pair
    collided in the video and whether K is linked to it by earlier collisions, so neither
    answers it."""
    events = clip_events(episode, num_frames)
    first = first_frames(events, num_frames)

    def seen(pair: Pair) -> tuple[bool, bool]:
        return pair in first, removed in influencers(events, pair, first[pair])

    candidates = [Pair(p) for p in combinations(sorted(set(refs) - {removed}), 2)]
    return event_question(clip, "counterfactual", f"What will happen without the "
                          f"{refs[removed][0]}?",
                          [*refs[removed][1], "filter_counterfact", "events",
                           "filter_collision"], counterfactual, candidates, refs, rng,
                          stratum=seen, limit=COUNTERFACTUAL_PER_OBJECT)


def removal_collisions(env: gym.Env, episode: Episode, num_frames: int,
                       refs: dict) -> dict[int, set[Pair]]:
    """Per referable object k, the colliding pairs when the seed is re-simulated without k."""
    return {k: collision_pairs(simulate_episode(env, episode.meta["seed"], num_frames,
                                                options={"exclude_ids": [k]}, render=False),
                               0, num_frames)
            for k in sorted(refs)}


def episode_questions(env: gym.Env, episode: Episode, clip: int, num_frames: int, horizon: int,
                      rng: np.random.Generator) -> list[Question]:
    """All four question types for one episode's first `num_frames` frames."""
    refs = object_refs(episode)
    without = removal_collisions(env, episode, num_frames, refs)
    removed = [int(k) for k in rng.permutation(sorted(refs))]
    return [*descriptive_questions(episode, clip, num_frames, refs, rng),
            *explanatory_questions(episode, clip, num_frames, refs, without),
            *predictive_questions(env, episode, clip, num_frames, horizon, refs, rng),
            *(q for k in removed
              for q in counterfactual_questions(episode, clip, num_frames, k, refs, without[k],
                                                rng))]


def balance(questions: list[Question], rng: np.random.Generator) -> list[Question]:
    """Subsample yes/no questions so that, per type, 'yes' is correct exactly half the time."""
    yes_no = defaultdict(lambda: {True: [], False: []})
    kept = []
    for q in questions:
        answers = {c.text: c.correct for c in q.choices}
        if set(answers) == {"yes", "no"}:
            yes_no[q.question_type][answers["yes"]].append(q)
        else:
            kept.append(q)
    for groups in yes_no.values():
        size = min(len(groups[True]), len(groups[False]))
        for members in groups.values():
            kept.extend(members[i] for i in sorted(rng.permutation(len(members))[:size]))
    return sorted(kept, key=lambda q: q.clip)


def generate_questions(env: gym.Env, episodes: list[Episode], num_frames: int, horizon: int,
                       seed: int) -> list[Question]:
    """Balanced questions of all types for `episodes` (clip i = episodes[i])."""
    rng = np.random.default_rng(seed)
    questions = [q for i, ep in enumerate(tqdm(episodes, desc="QA questions", leave=False))
                 for q in episode_questions(env, ep, i, num_frames, horizon, rng)]
    return balance(questions, rng)


def shortcut_tokens(episodes: list[Episode], num_frames: int, max_objects: int,
                    vocab: dict[str, list[str]]) -> np.ndarray:
    """The shortcut control's QA tokens (E, M, C): per dynamic object (id order, zero rows up
    to max_objects) only what the video shows as events - its colour and material one-hots
    (vocab, as the ceiling's), its slot, per other slot whether, first and last when (1 - frame
    / num_frames) they collided, its collision frames with balls and with walls (T each) and
    both counts. No position, velocity, mass or size: a head that answers from these answers
    from spotting and ordering events."""
    colors, materials = vocab["color"], vocab["material"]
    width = len(colors) + len(materials) + 4 * max_objects + 2 * num_frames + 2
    tokens = np.zeros((len(episodes), max_objects, width), np.float32)
    for e, episode in enumerate(episodes):
        index = dynamic_indices(episode)
        if len(index) > max_objects:
            raise DataError(f"episode seed {episode.meta.get('seed')}: {len(index)} dynamic "
                            f"objects, more than max_objects={max_objects}")
        slot = {episode.objects[i]["id"]: k for k, i in enumerate(index)}
        for k, i in enumerate(index):
            obj = episode.objects[i]
            tokens[e, k, colors.index(obj["color"])] = 1
            tokens[e, k, len(colors) + materials.index(obj["material"])] = 1
        base = len(colors) + len(materials)
        slots, met, first, last = (base + j * max_objects for j in range(4))
        balls, walls = base + 4 * max_objects, base + 4 * max_objects + num_frames
        counts = walls + num_frames
        tokens[e, np.arange(len(index)), slots + np.arange(len(index))] = 1
        for c in sorted(episode.collisions, key=lambda c: c["frame"]):
            frame, ids = c["frame"], [i for i in c["object_ids"] if i in slot]
            if frame >= num_frames or not ids:
                continue
            when = 1 - frame / num_frames
            if len(ids) == 2:
                for a, b in (ids, ids[::-1]):
                    row = tokens[e, slot[a]]
                    if not row[met + slot[b]]:
                        row[first + slot[b]] = when
                    row[met + slot[b]], row[last + slot[b]] = 1, when
                    row[balls + frame] += 1
                    row[counts] += 1
            else:
                tokens[e, slot[ids[0]], walls + frame] += 1
                tokens[e, slot[ids[0]], counts + 1] += 1
    return tokens


def named_objects(program: list[str], refs: dict) -> list[int]:
    """Ids of the objects whose reference program occurs in `program`, in order of occurrence."""
    found = []
    for start in range(len(program)):
        found += [k for k, (_, ref) in refs.items() if program[start:start + len(ref)] == ref]
    return found


def option_structure(episodes: list[Episode], questions: list[Question],
                     num_frames: int) -> dict[str, float]:
    """What the video's events say about the options, right vs wrong: the share of
    counterfactual options whose pair collided in the video, and of explanatory questions
    whose candidate collided with A or B itself (not through others), by right answer."""
    shares = defaultdict(list)
    for q in questions:
        episode = episodes[q.clip]
        refs = object_refs(episode)
        collided = collision_pairs(episode, 0, num_frames)
        if q.question_type == "counterfactual":
            for choice in q.choices:
                label = "right" if choice.correct else "wrong"
                shares[f"counterfactual {label}: collided in the video"].append(
                    Pair(named_objects(choice.program, refs)) in collided)
        elif q.question_type == "explanatory":
            a, b, cause = named_objects(q.program, refs)
            answer = "yes" if next(c.correct for c in q.choices if c.text == "yes") else "no"
            shares[f"explanatory {answer}: the candidate hit A or B itself"].append(
                Pair((a, cause)) in collided or Pair((b, cause)) in collided)
    return {key: round(float(np.mean(values)), 3) for key, values in sorted(shares.items())}
