package dockerfile

import (
	"slices"
	"testing"
)

func TestCreatedBy(t *testing.T) {
	p := mustPlan(t, `FROM scratch AS base
ENV foo=bar
FROM python:3.12
ENV A=b PATH=/venv/bin:$PATH
LABEL lbl=val "two words"="x y"
WORKDIR /app
WORKDIR src
WORKDIR /
COPY app.py .
COPY --from=base --chown=1000:1000 --chmod=0644 foo2 foo3
COPY --parents a/*.py b/ /dst/
COPY <<EOF /etc/conf
x
EOF
ADD --chown=app https://example.com/a.tgz /opt/
RUN pip install x
RUN ["ls", "-l"]
RUN <<EOF
apt-get update
EOF
RUN <<EOF
#!/usr/bin/env python3
print("hi")
EOF
ARG foo=bar
ARG bar=123
ARG foo=bar2
ARG nodefault
RUN ls /etc/
EXPOSE 2375 5000 1234/udp
USER app:app
VOLUME /data /logs
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN echo with bash
CMD ["python3", "app.py"]
ENTRYPOINT python3 -m app
MAINTAINER someone@example.com
ONBUILD RUN echo later
`, PlanOptions{})
	want := []struct {
		created string
		empty   bool
	}{
		{"ENV A=b PATH=/venv/bin:" + defaultPath, true},
		{"LABEL lbl=val two words=x y", true},
		{"WORKDIR /app", false},
		{"WORKDIR /app/src", false},
		{"WORKDIR /", true},
		{"COPY app.py . # buildkit", false},
		{"COPY --chown=1000:1000 --chmod=0644 foo2 foo3 # buildkit", false},
		{"COPY --parents a/*.py b/ /dst/ # buildkit", false},
		{"COPY <<EOF /etc/conf # buildkit", false},
		{"ADD --chown=app https://example.com/a.tgz /opt/ # buildkit", false},
		{"RUN /bin/sh -c pip install x # buildkit", false},
		{"RUN ls -l # buildkit", false},
		{"RUN /bin/sh -c apt-get update\n # buildkit", false},
		{"RUN /bin/sh -c /dev/pipes/EOF # buildkit", false},
		{"ARG foo=bar", true},
		{"ARG bar=123", true},
		{"ARG foo=bar2", true},
		{"ARG nodefault", true},
		{"RUN |3 foo=bar2 bar=123 nodefault= /bin/sh -c ls /etc/ # buildkit", false},
		{"EXPOSE [1234/udp 2375/tcp 5000/tcp]", true},
		{"USER app:app", true},
		{"VOLUME [/data /logs]", true},
		{"STOPSIGNAL SIGINT", true},
		{"HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}", true},
		{"SHELL [/bin/bash -o pipefail -c]", true},
		{"RUN |3 foo=bar2 bar=123 nodefault= /bin/bash -o pipefail -c echo with bash # buildkit", false},
		{`CMD ["python3" "app.py"]`, true},
		{`ENTRYPOINT ["/bin/bash" "-o" "pipefail" "-c" "python3 -m app"]`, true},
		{"MAINTAINER someone@example.com", true},
		{"", true},
	}
	steps := p.TargetStage().Steps
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d", len(steps), len(want))
	}
	for i, w := range want {
		if got := CreatedBy(steps[i]); got != w.created {
			t.Errorf("step %d (%s):\n got %q\nwant %q", i, steps[i].Original, got, w.created)
		}
		if got := steps[i].EmptyLayer(); got != w.empty {
			t.Errorf("step %d (%s): EmptyLayer = %v", i, steps[i].Original, got)
		}
	}
}

func TestRunArgs(t *testing.T) {
	p := mustPlan(t, `FROM scratch
RUN echo one \
    two
RUN ["python3", "-c", "print(1)"]
RUN <<EOF
set -e
echo hi
EOF
RUN <<-EOF
	echo chomped
	EOF
RUN <<EOF
#!/usr/bin/env python3
print("hi")
EOF
RUN python3 <<A && cat <<B
print(1)
A
text
B
COPY a b
CMD python3 app.py
ENTRYPOINT ["tini", "--"]
`, PlanOptions{})
	steps := p.TargetStage().Steps
	tests := []struct {
		i      int
		args   []string
		script *InlineFile
	}{
		{0, []string{"/bin/sh", "-c", "echo one     two"}, nil},
		{1, []string{"python3", "-c", "print(1)"}, nil},
		{2, []string{"/bin/sh", "-c", "set -e\necho hi\n"}, nil},
		{3, []string{"/bin/sh", "-c", "echo chomped\n"}, nil},
		{4, []string{"/bin/sh", "-c", "/dev/pipes/EOF"}, &InlineFile{Dir: "/dev/pipes/", Name: "EOF", Data: "#!/usr/bin/env python3\nprint(\"hi\")\n"}},
		{5, []string{"/bin/sh", "-c", "python3 <<A && cat <<B\nprint(1)\nA\ntext\nB"}, nil},
	}
	for _, tt := range tests {
		args, script, ok := steps[tt.i].RunArgs()
		if !ok || !slices.Equal(args, tt.args) {
			t.Errorf("step %d: args %q (ok %v), want %q", tt.i, args, ok, tt.args)
		}
		if (script == nil) != (tt.script == nil) || (script != nil && *script != *tt.script) {
			t.Errorf("step %d: script %+v, want %+v", tt.i, script, tt.script)
		}
	}
	if _, _, ok := steps[6].RunArgs(); ok {
		t.Error("RunArgs ok for COPY")
	}
	if args, ok := steps[7].CommandArgs(); !ok || !slices.Equal(args, []string{"/bin/sh", "-c", "python3 app.py"}) {
		t.Errorf("CMD args %q", args)
	}
	if args, ok := steps[8].CommandArgs(); !ok || !slices.Equal(args, []string{"tini", "--"}) {
		t.Errorf("ENTRYPOINT args %q", args)
	}
	if _, ok := steps[6].CommandArgs(); ok {
		t.Error("CommandArgs ok for COPY")
	}
	if steps[6].Network() != "" || steps[6].Mounts() != nil || steps[6].Security() != "" {
		t.Error("RUN accessors on COPY")
	}
}

func TestResolveWorkdir(t *testing.T) {
	tests := []struct{ cur, p, want string }{
		{"", "app", "/app"},
		{"/", "/srv/", "/srv"},
		{"/app", "src", "/app/src"},
		{"/app", "../x/./y", "/x/y"},
		{"/app", "/abs", "/abs"},
	}
	for _, tt := range tests {
		if got := ResolveWorkdir(tt.cur, tt.p); got != tt.want {
			t.Errorf("ResolveWorkdir(%q, %q) = %q, want %q", tt.cur, tt.p, got, tt.want)
		}
	}
}
