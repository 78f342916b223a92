package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// KeyDoc is one configuration key as the README's table shows it.
type KeyDoc struct {
	Key     string
	Default string // rendered; empty for an empty value and for every secret
	Env     string
	Doc     string // the meaning, from the doc tags, {x} still unrendered
	Secret  bool
	// FileOnly: a list of objects, which no environment variable can set.
	FileOnly bool
	// Required: Validate refuses the defaults without a value here.
	Required bool
}

// KeyDocs lists every key, in declaration order: the keys EnvKeys lists,
// with their defaults and meanings.
func KeyDocs() []KeyDoc {
	required := map[string]bool{}
	def := Default()
	if p, ok := def.Validate().(Problems); ok {
		for _, msg := range p {
			key, _, _ := strings.Cut(msg, ": ")
			required[key] = true
		}
	}
	var out []KeyDoc
	_ = walk(reflect.ValueOf(def), "", "", func(l leaf) error {
		d := KeyDoc{Key: l.Key, Env: envName(l.Key), Doc: l.Doc, Secret: l.Field.Tag.Get("secret") == "true", Required: required[l.Key]}
		d.FileOnly = l.Value.Kind() == reflect.Slice && l.Value.Type().Elem().Kind() == reflect.Struct
		if !d.Secret {
			d.Default = renderValue(l.Value)
		}
		out = append(out, d)
		return nil
	})
	return out
}

// renderValue shows a default as an operator writes it: 168h, not
// 168h0m0s; lists comma-separated; empty as nothing.
func renderValue(v reflect.Value) string {
	if v.Type() == durationType {
		return shortDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = renderValue(v.Index(i))
		}
		return strings.Join(items, ", ")
	case reflect.Struct:
		// A list item (accept.fields): its non-zero keys, as in YAML.
		var kv []string
		for i := 0; i < v.NumField(); i++ {
			if !v.Field(i).IsZero() {
				kv = append(kv, strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]+": "+renderValue(v.Field(i)))
			}
		}
		return "{" + strings.Join(kv, ", ") + "}"
	}
	return fmt.Sprint(v.Interface())
}

func shortDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var docCode = regexp.MustCompile(`\{([^{}]+)\}`)

// renderDoc turns a doc tag's {x} into markdown code and keeps the table
// intact.
func renderDoc(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return docCode.ReplaceAllString(s, "`$1`")
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// Docs renders the README's configuration table (key, default,
// environment variable, meaning) and the cross-key rules, as markdown.
// `kratos-orgs config-docs` prints it; a test keeps the README equal.
func Docs() string {
	var b strings.Builder
	b.WriteString("| key | default | environment variable | meaning |\n|---|---|---|---|\n")
	for _, k := range KeyDocs() {
		def := code(k.Default)
		switch {
		case k.Secret && k.Required:
			def = "(required, secret)"
		case k.Secret:
			def = "(secret)"
		case k.Required && k.Default == "":
			def = "(required)"
		}
		env := code(k.Env)
		if k.FileOnly {
			env = "(file only)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(k.Key), def, env, renderDoc(k.Doc))
	}
	b.WriteString("\nRules between keys (checked at start-up and by `kratos-orgs check-config`):\n\n")
	for _, r := range CrossKeyRules {
		fmt.Fprintf(&b, "* %s\n", renderDoc(r))
	}
	return b.String()
}
