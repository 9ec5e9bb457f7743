"""What learners do and what we remember of it.

- `learners`: guest learners, named by a random token in the signed cookie.
- `answering`: the question page, variants, hints, grading and storing attempts, results.
- `progress`: where a learner stands on each question and pattern.
"""
