// Package pyproject turns a Python project directory into a build plan and
// generates a Dockerfile, a .dockerignore and a compose.yaml for it.
//
// Detect reads only the project's own files (never the network):
//
//   - dependencies from requirements*.txt (with -r/-c includes), PEP 621
//     pyproject.toml, Poetry, uv (uv.lock), PDM (pdm.lock), Pipfile /
//     Pipfile.lock, setup.py / setup.cfg;
//   - the Python version from .python-version, requires-python,
//     runtime.txt, Pipfile and Poetry's python constraint: the newest known
//     CPython release satisfying all of them (PEP 440 and Poetry
//     specifiers);
//   - the application by parsing module-level Python statements (imports,
//     `name = Call(...)` assignments, `if __name__ == "__main__":`, Django
//     settings), never by substring matching: Flask, FastAPI, Starlette,
//     Django, Celery, RQ, plain scripts and packages with __main__;
//   - the server, the port and the process kind, with Procfile lines and
//     [tool.berth] keys in pyproject.toml taking precedence.
//
// Every decision is recorded with its reason (Project.Reasons, Explain), and
// when two candidates are equally likely Detect fails with an
// *AmbiguityError naming them and the flag or [tool.berth] key that settles
// it, rather than guessing.
//
// Generate renders the plan: a multi-stage Dockerfile (virtualenv built in
// a builder stage keyed only by the dependency manifests, non-root runtime
// stage, exec-form CMD, HEALTHCHECK for web apps), a .dockerignore and a
// compose.yaml.
package pyproject
