"""The question bank: question files, their schema, and their life in the database.

- `schema`: what a pattern.yaml and a question file may contain (strict Pydantic models).
- `files`: reading and writing the `questions/` folder, with `path: field: what` errors.
- `store`: importing into and exporting from the database, with versions.
- `service`: what the rest of the app asks of the bank (patterns, questions, load-or-fail).
"""
