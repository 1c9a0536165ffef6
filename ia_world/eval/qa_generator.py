"""Causal questions for generated episodes, answered from the simulator's ground truth.

Objects are referred to by colour and material (only objects that description names uniquely).
Predictive answers come from simulating the same seed past the clip's end; counterfactual
answers from re-simulating the seed without the named object (`options={"exclude_ids": [k]}`).
Every question has one correct and one wrong option, so each option is correct half the time.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from ia_world.data.episode import Episode, simulate_episode
from ia_world.errors import DataError
from ia_world.eval.qa import OBJECTS, UNIQUE, Choice, Question

Pair = frozenset
PREDICTIVE_PER_CLIP = 3  # predictive questions per clip, each with different options


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


def one_of_each(rng: np.random.Generator, right: list[Choice], wrong: list[Choice]):
    """One correct and one wrong option in random order, or None if either list is empty."""
    if not right or not wrong:
        return None
    pair = [right[rng.integers(len(right))], wrong[rng.integers(len(wrong))]]
    return [pair[i] for i in rng.permutation(2)]


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


def ancestors(events: list[tuple[int, Pair]], target: int) -> set[int]:
    """Indices of the events that cause event `target`: earlier, linked by shared objects."""
    causes, frontier = set(), {target}
    while frontier:
        current = frontier.pop()
        frame, objects = events[current]
        for i, (other_frame, other_objects) in enumerate(events):
            if other_frame < frame and other_objects & objects and i not in causes:
                causes.add(i)
                frontier.add(i)
    return causes


def explanatory_questions(episode: Episode, clip: int, num_frames: int, refs: dict,
                          rng: np.random.Generator) -> list[Question]:
    """'Which is responsible for the collision between A and B?' (CLEVRER's causal graph)."""
    dynamic = {o["id"] for o in episode.objects if not o.get("static", False)}
    events = [(c["frame"], Pair(c["object_ids"])) for c in episode.collisions
              if c["frame"] < num_frames and set(c["object_ids"]) <= dynamic]
    questions = []
    for target, (_, pair) in enumerate(events):
        if not pair <= refs.keys():
            continue
        causes = ancestors(events, target)
        right = [event_choice(events[i][1], refs, True) for i in causes
                 if events[i][1] <= refs.keys() and events[i][1] != pair]
        wrong = [event_choice(events[i][1], refs, False) for i in range(len(events))
                 if i not in causes and i != target and events[i][1] <= refs.keys()
                 and events[i][1] != pair and all(events[i][1] != events[j][1] for j in causes)]
        choices = one_of_each(rng, right, wrong)
        if choices:
            a, b = sorted(pair)
            questions.append(Question(
                clip, "explanatory",
                f"Which is responsible for the collision between the {refs[a][0]} and the "
                f"{refs[b][0]}?",
                ["events", *refs[a][1], *refs[b][1], "filter_collision", "unique",
                 "filter_ancestor"], choices))
    return questions


def event_question(clip: int, qtype: str, text: str, program: list[str], happened: set[Pair],
                   candidates: list[Pair], refs: dict, rng: np.random.Generator,
                   limit: int = 1) -> list[Question]:
    """Up to `limit` questions whose options are collisions (correct iff the pair is in
    `happened`), each with its own correct and wrong option."""
    right = [event_choice(p, refs, True) for p in candidates if p in happened]
    wrong = [event_choice(p, refs, False) for p in candidates if p not in happened]
    right = [right[i] for i in rng.permutation(len(right))]
    wrong = [wrong[i] for i in rng.permutation(len(wrong))]
    return [Question(clip, qtype, text, program, [pair[i] for i in rng.permutation(2)])
            for pair in list(zip(right, wrong))[:limit]]


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


def counterfactual_questions(env: gym.Env, episode: Episode, clip: int, num_frames: int,
                             removed: int, refs: dict,
                             rng: np.random.Generator) -> list[Question]:
    """'What will happen without the K?': collisions when the seed is re-simulated without K."""
    without = simulate_episode(env, episode.meta["seed"], num_frames,
                               options={"exclude_ids": [removed]}, render=False)
    factual = collision_pairs(episode, 0, num_frames)
    counterfactual = collision_pairs(without, 0, num_frames)
    candidates = [Pair(p) for p in combinations(sorted(set(refs) - {removed}), 2)]
    changed = [p for p in candidates if (p in factual) != (p in counterfactual)]
    if changed:  # prefer options whose answer differs from what the video shows
        candidates = changed + [p for p in candidates if p in counterfactual and p in factual]
    return event_question(clip, "counterfactual", f"What will happen without the "
                          f"{refs[removed][0]}?",
                          [*refs[removed][1], "filter_counterfact", "events",
                           "filter_collision"], counterfactual, candidates, refs, rng)


def episode_questions(env: gym.Env, episode: Episode, clip: int, num_frames: int, horizon: int,
                      rng: np.random.Generator) -> list[Question]:
    """All four question types for one episode's first `num_frames` frames."""
    refs = object_refs(episode)
    removed = [int(k) for k in rng.permutation(sorted(refs))]
    return [*descriptive_questions(episode, clip, num_frames, refs, rng),
            *explanatory_questions(episode, clip, num_frames, refs, rng),
            *predictive_questions(env, episode, clip, num_frames, horizon, refs, rng),
            *(q for k in removed
              for q in counterfactual_questions(env, episode, clip, num_frames, k, refs, rng))]


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
