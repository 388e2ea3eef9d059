"""Twenty SMS-style messages labelled spam or ham, and a few-shot prompt for them: the real
model's end-to-end test and the LLM throughput benchmark use both."""

from __future__ import annotations

from forgeline.labeling.prompt import PromptTemplate

__all__ = ["ROWS", "TEMPLATE"]

TEMPLATE = PromptTemplate(
    instruction="Classify each SMS message as spam (unsolicited ads, prizes, scams) or ham "
                "(an ordinary personal message).",
    classes=("ham", "spam"),
    examples=(
        ("Are we still meeting for lunch tomorrow?", "ham"),
        ("WINNER!! You have won a 1000 GBP prize. Call 09061701461 to claim now", "spam"),
        ("Sorry, I'll call you later, I'm in a meeting", "ham"),
        ("FREE entry to our weekly competition, text WIN to 80086 now!", "spam"),
    ))

# (text, is spam): written for this test, in the style of the SMS spam collection
ROWS = [
    ("Hey, what time does the film start tonight?", 0),
    ("Congratulations! You've been selected for a FREE iPhone. Reply YES to claim", 1),
    ("Can you pick up some milk on the way home?", 0),
    ("URGENT: your mobile number has won 2000 cash. Call 09050000327 now", 1),
    ("I'm running 10 minutes late, start without me", 0),
    ("Get a free ringtone every week! Text TONE to 85222. 1.50/msg", 1),
    ("Happy birthday! Hope you have a lovely day", 0),
    ("You have 1 new voicemail. Claim your free prize at www.prize-claim.biz", 1),
    ("Did you finish the report for Monday?", 0),
    ("Final notice: claim your guaranteed 500 pound reward, call 0800 123 456", 1),
    ("Mum says dinner is at 7, don't be late", 0),
    ("Cheap loans approved instantly! No credit check. Reply LOAN now", 1),
    ("Thanks for the lift yesterday, see you Friday", 0),
    ("WIN a luxury holiday for two! Text GO to 87121 to enter the draw", 1),
    ("Ok, I'll bring the charger when I come over", 0),
    ("Your account is suspended. Verify your details at bit.ly/secure-bank now", 1),
    ("Where did you park the car?", 0),
    ("Exclusive offer: 50% off all ringtones, text STOP to opt out", 1),
    ("Good luck with your exam today!", 0),
    ("You are a lucky winner of our weekly cash draw. Call 09066 to collect", 1),
]
