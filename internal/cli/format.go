package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode/utf8"
)

// templateFuncs are the functions docker offers in --format templates.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(buf.String()), nil
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		r, n := utf8.DecodeRuneInString(s)
		return strings.ToUpper(string(r)) + s[n:]
	},
	"pad": func(s string, left, right int) string {
		return strings.Repeat(" ", left) + s + strings.Repeat(" ", right)
	},
	"truncate": func(s string, n int) string {
		if utf8.RuneCountInString(s) <= n {
			return s
		}
		return string([]rune(s)[:n])
	},
	"println": fmt.Sprintln,
}

func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, usageErrorf("invalid --format template: %v", err)
	}
	return t, nil
}

// listFormat describes how a listing command (images, ps, …) prints.
type listFormat struct {
	// Table is the default: a "table …" template.
	Table string
	// Headers maps a field name to its column title ("ID" -> "IMAGE ID").
	Headers map[string]string
}

// writeList prints rows as docker does for the given --format value:
// "" or "table" for the default table, "json" for one JSON object a line,
// "table TEMPLATE" for a table with headers, or a Go template run per row.
func writeList(w io.Writer, format string, lf listFormat, rows []any) error {
	switch {
	case format == "" || format == "table":
		format = lf.Table
	case format == "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		table = true
		format = strings.TrimLeft(rest, " \t")
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		var hb bytes.Buffer
		if err := t.Execute(&hb, lf.Headers); err != nil {
			return usageErrorf("invalid --format template: %v", err)
		}
		fmt.Fprintln(out, strings.TrimRight(hb.String(), "\n"))
	}
	for _, r := range rows {
		var b bytes.Buffer
		if err := t.Execute(&b, r); err != nil {
			return usageErrorf("invalid --format template: %v", err)
		}
		fmt.Fprintln(out, strings.TrimRight(b.String(), "\n"))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// writeFormatted prints objects as inspect does: an indented JSON array by
// default or for "json", else the Go template once per object.
func writeFormatted(w io.Writer, format string, objs []any) error {
	if format == "" || format == "json" {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		if objs == nil {
			objs = []any{}
		}
		return enc.Encode(objs)
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for _, o := range objs {
		var b bytes.Buffer
		if err := t.Execute(&b, o); err != nil {
			// As docker does, a template naming the JSON keys rather than
			// the Go fields ({{.Id}} for ID) runs against the JSON form.
			raw, ok := jsonForm(o)
			b.Reset()
			if !ok || t.Option("missingkey=error").Execute(&b, raw) != nil {
				return usageErrorf("invalid --format template: %v", err)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), "\n"))
	}
	return nil
}

// jsonForm is o as its JSON encoding decodes into maps and slices
// (numbers kept as written).
func jsonForm(o any) (any, bool) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, false
	}
	return raw, true
}
