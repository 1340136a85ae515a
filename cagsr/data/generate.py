"""Generated sample data, deterministic by seed, so the default run needs no files.

Customer-support dialogues (orders, refunds, accounts, bookings; 3-6 exchanges) whose later turns
depend on details given earlier (names, order numbers, dates, amounts), and grade-school math word
problems with step-by-step solutions and integer answers.

    python -c "from cagsr.data.generate import generate_dialogues; print(generate_dialogues(2, seed=0))"
"""

from __future__ import annotations

import random

from cagsr.data.schema import Dialogue, MathProblem, Utterance

NAMES = ["Alexis Morgan", "Priya Shah", "Tom Becker", "Maria Lopez", "Kenji Sato", "Amara Okafor", "Liam Walsh"]
ITEMS = ["blue running shoes", "wireless headphones", "a coffee grinder", "a winter jacket", "a desk lamp"]
CITIES = ["Lisbon", "Denver", "Osaka", "Nairobi", "Toronto", "Krakow"]
MONTHS = ["March", "April", "May", "June", "September", "October"]

# Each intent: an opening exchange, middle exchanges (a few are sampled, in order), a closing
# exchange that refers back to an earlier detail. Slots in braces are filled per dialogue.
INTENTS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "orders": {
        "open": [("Hi, I want to check on my order of {item}.", "Happy to help. Could I have your name and order number?")],
        "middle": [
            ("I'm {name}, order {order}.", "Thanks, {first}. Order {order} for {item} shipped on {month} {day}."),
            ("When will it arrive? I live in {city}.", "Delivery to {city} usually takes {days} days, so expect it by {month} {day2}."),
            ("Can I change the delivery address?", "Yes. What address in {city} should we use instead?"),
            ("Use {street}, please.", "Done: order {order} will now go to {street}, {city}."),
            ("Is there a tracking number?", "Yes, the tracking number for order {order} is {tracking}."),
        ],
        "close": [("Great. So it's still order {order}, arriving {month} {day2}?", "Correct, {first}: order {order} arrives by {month} {day2}. Anything else?")],
    },
    "refunds": {
        "open": [("I'd like a refund for {item} I bought.", "Sorry to hear that. What is your order number and the reason?")],
        "middle": [
            ("Order {order}. It arrived damaged.", "I'm sorry, {first}. Order {order} qualifies for a full refund of ${amount}."),
            ("How long does the refund take?", "Refunds reach your card in {days} business days."),
            ("Do I need to send it back?", "Yes, please ship it back within 30 days; the label is free."),
            ("My email is {email}.", "Thanks, I've sent the return label for order {order} to {email}."),
        ],
        "close": [("Just to confirm, ${amount} back for order {order}?", "Yes: ${amount} for order {order}, within {days} business days.")],
    },
    "accounts": {
        "open": [("I can't log in to my account.", "I can help with that. What is the email on the account?")],
        "middle": [
            ("It's {email}.", "Thanks. I found the account for {name} under {email}."),
            ("I think my password expired.", "I've sent a reset link to {email}; it is valid for {days} hours."),
            ("Can you also update my phone number to {phone}?", "Done: the phone number is now {phone}."),
            ("Did anyone else log in recently?", "The last sign-in was from {city} on {month} {day}."),
        ],
        "close": [("So the link went to {email} and my phone is {phone}?", "Exactly: reset link to {email}, phone {phone}. Anything else, {first}?")],
    },
    "bookings": {
        "open": [("I need a hotel room in {city}.", "Sure. For which dates, and how many guests?")],
        "middle": [
            ("From {month} {day} for {nights} nights, {guests} guests.", "I have a room in {city} from {month} {day} for {nights} nights at ${amount} per night."),
            ("Does it include breakfast?", "Breakfast is included for all {guests} guests."),
            ("Please book it under {name}.", "Booked under {name}; your confirmation code is {order}."),
            ("Can I cancel later?", "Free cancellation until 48 hours before {month} {day}."),
        ],
        "close": [("So {nights} nights in {city} from {month} {day}, code {order}?", "Yes: {nights} nights in {city} from {month} {day}, confirmation {order}.")],
    },
}


def _slots(rng: random.Random) -> dict[str, str]:
    name = rng.choice(NAMES)
    day = rng.randint(1, 20)
    days = rng.randint(2, 7)
    return {
        "name": name, "first": name.split()[0], "item": rng.choice(ITEMS), "city": rng.choice(CITIES),
        "month": rng.choice(MONTHS), "day": str(day), "day2": str(day + days), "days": str(days),
        "order": f"{rng.choice('ABKRT')}{rng.choice('XMQZ')}-{rng.randint(10000, 99999)}",
        "tracking": f"1Z{rng.randint(10**9, 10**10 - 1)}", "amount": str(rng.randint(19, 480)),
        "email": f"{name.split()[0].lower()}{rng.randint(1, 99)}@example.com",
        "phone": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        "street": f"{rng.randint(2, 250)} {rng.choice(['Oak', 'Harbor', 'Hill', 'Station'])} Street",
        "nights": str(rng.randint(2, 6)), "guests": str(rng.randint(1, 4)),
    }


def generate_dialogues(n: int, seed: int = 0) -> list[Dialogue]:
    """n dialogues with 3-6 user/agent exchanges each, cycling through the intents."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        intent = list(INTENTS)[i % len(INTENTS)]
        parts, slots = INTENTS[intent], _slots(rng)
        n_middle = rng.randint(1, min(4, len(parts["middle"])))
        middle = sorted(rng.sample(range(len(parts["middle"])), n_middle))
        exchanges = [parts["open"][0], *(parts["middle"][j] for j in middle), parts["close"][0]]
        turns = []
        for user, agent in exchanges:
            turns.append(Utterance("user", user.format(**slots)))
            turns.append(Utterance("agent", agent.format(**slots)))
        keywords = [slots["order"], slots["first"], slots["city"]]
        out.append(Dialogue(id=f"gen-{intent}-{i}", turns=turns, domain=intent, meta={"keywords": keywords}))
    return out


def _problem(rng: random.Random) -> tuple[str, list[str], int]:
    name = rng.choice(NAMES).split()[0]
    a, b, c = rng.randint(12, 40), rng.randint(2, 9), rng.randint(2, 12)
    kind = rng.randrange(5)
    if kind == 0:
        q = f"{name} has {a} stickers and buys {b} packs with {c} stickers each. How many stickers does {name} have now?"
        return q, [f"The packs hold {b} x {c} = {b * c} stickers.", f"{name} has {a} + {b * c} = {a + b * c} stickers."], a + b * c
    if kind == 1:
        total = b * c
        q = f"A baker makes {total} muffins and puts them into boxes of {c}. She sells {b - 1} boxes. How many boxes are left?"
        return q, [f"There are {total} / {c} = {b} boxes.", f"After selling, {b} - {b - 1} = 1 box is left."], 1
    if kind == 2:
        q = f"{name} earns ${c} an hour and works {b} hours a day for {a % 6 + 2} days. How much does {name} earn?"
        d = a % 6 + 2
        return q, [f"Each day {name} earns {c} x {b} = ${b * c}.", f"Over {d} days that is {b * c} x {d} = ${b * c * d}."], b * c * d
    if kind == 3:
        q = f"A train has {a} passengers. At the first stop {b} get off and {c} get on. How many passengers are on the train now?"
        return q, [f"After {b} get off there are {a} - {b} = {a - b} passengers.", f"After {c} get on there are {a - b} + {c} = {a - b + c} passengers."], a - b + c
    price, qty = rng.randint(3, 15), rng.randint(2, 6)
    paid = (price * qty // 10 + 1) * 10
    q = f"{name} buys {qty} books at ${price} each and pays with ${paid}. How much change does {name} get?"
    return q, [f"The books cost {qty} x {price} = ${qty * price}.", f"The change is {paid} - {qty * price} = ${paid - qty * price}."], paid - qty * price


def generate_math(n: int, seed: int = 0) -> list[MathProblem]:
    """n two-step word problems with integer answers."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        question, steps, answer = _problem(rng)
        out.append(MathProblem(id=f"gen-math-{i}", question=question, steps=steps, answer=str(answer)))
    return out
