# Writes the project's exactly pinned dependencies, read from its lock file
# (or its declared dependencies when there is none), as a pip requirements
# file, so that pip alone installs them. It runs at build time, so a changed
# lock file needs no regenerated Dockerfile. Local path dependencies are
# left out: the project itself is installed later.
import json
import re
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/requirements.lock.txt"


def load_toml(path):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import subprocess
        # The virtualenv has no pip: the builder's pip installs tomli.
        subprocess.check_call(["pip", "install", "-q", "--no-compile",
                               "--target", "/tmp/tomli", "tomli"])
        sys.path.insert(0, "/tmp/tomli")
        import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class Pins:
    def __init__(self):
        self.lines = {}    # name -> requirement without marker
        self.markers = {}  # name -> list of markers (None: unconditional)

    def add(self, name, req, marker):
        self.lines.setdefault(name, req)
        self.markers.setdefault(name, []).append(marker)

    def render(self):
        out = []
        for name in sorted(self.lines):
            ms = self.markers[name]
            line = self.lines[name]
            if None not in ms:
                uniq = sorted(set(ms))
                line += " ; " + " or ".join("(%s)" % m for m in uniq)
            out.append(line)
        return out


def and_markers(a, b):
    if a and b and a != b:
        return "(%s) and (%s)" % (a, b)
    return a or b


def git_req(name, url, ref):
    return "%s @ git+%s@%s" % (name, url, ref) if ref else "%s @ git+%s" % (name, url)


# @source uv
def from_uv():
    lock = load_toml("uv.lock")
    by_name = {}
    root = None
    for p in lock.get("package", []):
        by_name.setdefault(norm(p["name"]), []).append(p)
        src = p.get("source", {})
        if src.get("editable") == "." or src.get("virtual") == ".":
            root = p
    if root is None:
        sys.exit("uv.lock: no package for the project itself (source editable or virtual \".\")")
    pins = Pins()
    seen = set()
    queue = [(d, d.get("marker")) for d in root.get("dependencies", [])]
    while queue:
        dep, marker = queue.pop(0)
        cands = by_name.get(norm(dep["name"]), [])
        if "version" in dep:
            cands = [c for c in cands if c.get("version") == dep["version"]] or cands
        if not cands:
            sys.exit("uv.lock: %s is required but not locked" % dep["name"])
        pkg = cands[0]
        name, src = norm(pkg["name"]), pkg.get("source", {})
        if "registry" in src:
            pins.add(name, "%s==%s" % (name, pkg["version"]), marker)
        elif "git" in src:
            url, _, commit = src["git"].partition("#")
            pins.add(name, git_req(name, url.split("?")[0], commit), marker)
        elif "url" in src:
            pins.add(name, "%s @ %s" % (name, src["url"]), marker)
        key = (name, pkg.get("version"), marker, tuple(dep.get("extra", [])))
        if key in seen:
            continue
        seen.add(key)
        subs = list(pkg.get("dependencies", []))
        for extra in dep.get("extra", []):
            subs += pkg.get("optional-dependencies", {}).get(extra, [])
        for d in subs:
            queue.append((d, and_markers(marker, d.get("marker"))))
    return pins.render()
# @end


# @source poetry
def from_poetry():
    lock = load_toml("poetry.lock")
    pp = load_toml("pyproject.toml")
    pkgs = lock.get("package", [])
    by_name = {norm(p["name"]): p for p in pkgs}
    pins = Pins()

    def add(pkg, marker):
        name, src = norm(pkg["name"]), pkg.get("source", {})
        kind = src.get("type")
        if kind in ("directory", "file"):
            return
        if kind == "git":
            pins.add(name, git_req(name, src["url"], src.get("resolved_reference") or src.get("reference")), marker)
        elif kind == "url":
            pins.add(name, "%s @ %s" % (name, src["url"]), marker)
        else:
            pins.add(name, "%s==%s" % (name, pkg["version"]), marker)

    if any("category" in p for p in pkgs):  # Poetry < 1.5 lock files
        for p in pkgs:
            if p.get("category", "main") == "main" and not p.get("optional", False):
                add(p, None)
        return pins.render()

    roots = []
    for name, spec in pp.get("tool", {}).get("poetry", {}).get("dependencies", {}).items():
        if name.lower() == "python":
            continue
        if isinstance(spec, dict) and spec.get("optional"):
            continue
        extras = spec.get("extras", []) if isinstance(spec, dict) else []
        marker = spec.get("markers") if isinstance(spec, dict) else None
        roots.append((name, extras, marker))
    for req in pp.get("project", {}).get("dependencies", []):
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*(?:;(.*))?", req)
        if m:
            extras = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
            roots.append((m.group(1), extras, (m.group(3) or "").strip() or None))
    seen = set()
    queue = list(roots)
    while queue:
        name, extras, marker = queue.pop(0)
        pkg = by_name.get(norm(name))
        if pkg is None:
            sys.exit("poetry.lock: %s is required but not locked; run poetry lock" % name)
        add(pkg, marker)
        key = (norm(name), tuple(extras), marker)
        if key in seen:
            continue
        seen.add(key)
        for dname, dspec in pkg.get("dependencies", {}).items():
            dmarker, dextras = marker, []
            if isinstance(dspec, dict):
                if dspec.get("optional"):
                    continue
                dmarker = and_markers(marker, dspec.get("markers"))
                dextras = dspec.get("extras", [])
            elif isinstance(dspec, list):
                dspec = dspec[0]
            queue.append((dname, dextras, dmarker))
        for extra in extras:
            for req in pkg.get("extras", {}).get(extra, []):
                m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
                if m:
                    ex = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
                    queue.append((m.group(1), ex, marker))
    return pins.render()
# @end


# @source pdm
def from_pdm():
    lock = load_toml("pdm.lock")
    out = []
    for p in lock.get("package", []):
        groups = p.get("groups")
        if groups is not None and "default" not in groups:
            continue
        if "path" in p or p.get("editable"):
            continue
        name = norm(p["name"])
        if p.get("extras"):
            name += "[%s]" % ",".join(p["extras"])
        if "git" in p:
            line = git_req(norm(p["name"]), p["git"], p.get("revision"))
        elif "url" in p:
            line = "%s @ %s" % (norm(p["name"]), p["url"])
        else:
            line = "%s==%s" % (name, p["version"])
        if p.get("marker"):
            line += " ; " + p["marker"]
        out.append(line)
    return sorted(out)
# @end


# @source pipfile.lock
def from_pipfile_lock():
    with open("Pipfile.lock") as f:
        lock = json.load(f)
    out = []
    for name, p in sorted(lock.get("default", {}).items()):
        if "version" in p:
            line = norm(name) + p["version"]
        elif "git" in p:
            line = git_req(norm(name), p["git"], p.get("ref"))
        else:
            continue  # a local path
        if p.get("markers"):
            line += " ; " + p["markers"]
        out.append(line)
    return out
# @end


# @source pipfile
def from_pipfile():
    out = []
    for name, spec in load_toml("Pipfile").get("packages", {}).items():
        extras = []
        if isinstance(spec, dict):
            if "path" in spec:
                continue
            if "git" in spec:
                out.append(git_req(name, spec["git"], spec.get("ref")))
                continue
            extras, spec = spec.get("extras", []), spec.get("version", "*")
        line = name + ("[%s]" % ",".join(extras) if extras else "")
        if spec != "*":
            line += spec
        out.append(line)
    return out
# @end


# @source pyproject
def poetry_spec(spec):
    """Converts a Poetry constraint (^1.2, ~1.2, 1.2.*, >=1,<2) to PEP 440."""
    out = []
    for part in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", spec.strip()):
        if not part or part == "*":
            continue
        m = re.match(r"^(\^|~(?!=))\s*(\d+(?:\.\d+)*)$", part)
        if m:
            nums = [int(x) for x in m.group(2).split(".")]
            if m.group(1) == "^":
                i = 0
                while i < len(nums) - 1 and nums[i] == 0:
                    i += 1
                upper = nums[:i + 1]
            else:
                upper = nums[:2] if len(nums) > 1 else nums[:1]
            upper[-1] += 1
            out += [">=" + m.group(2), "<" + ".".join(map(str, upper))]
        elif re.match(r"^\d", part):
            out.append("==" + part)
        else:
            out.append(part)
    return ",".join(out)


def from_pyproject():
    pp = load_toml("pyproject.toml")
    out = list(pp.get("project", {}).get("dependencies", []))
    for name, spec in pp.get("tool", {}).get("poetry", {}).get("dependencies", {}).items():
        if name.lower() == "python":
            continue
        extras, marker = [], None
        if isinstance(spec, dict):
            if spec.get("optional") or "path" in spec:
                continue
            extras, marker = spec.get("extras", []), spec.get("markers")
            if "git" in spec:
                out.append(git_req(name, spec["git"], spec.get("rev") or spec.get("tag") or spec.get("branch")))
                continue
            spec = spec.get("version", "*")
        line = name + ("[%s]" % ",".join(extras) if extras else "") + poetry_spec(spec)
        if marker:
            line += " ; " + marker
        out.append(line)
    return out
# @end


# @registry
SOURCES = {
    "uv": from_uv,
    "poetry": from_poetry,
    "pdm": from_pdm,
    "pipfile.lock": from_pipfile_lock,
    "pipfile": from_pipfile,
    "pyproject": from_pyproject,
}
# @end

# @main
lines = SOURCES[SOURCE]()
with open(OUT, "w") as f:
    f.write("".join(line + "\n" for line in lines))
print("%d pinned requirements -> %s" % (len(lines), OUT))
