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
	walkDocs(reflect.ValueOf(def), "", "", func(key, doc string, f reflect.StructField, v reflect.Value) {
		d := KeyDoc{Key: key, Env: envName(key), Doc: doc, Secret: f.Tag.Get("secret") == "true", Required: required[key]}
		d.FileOnly = v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct
		if !d.Secret {
			d.Default = renderValue(v)
		}
		out = append(out, d)
	})
	return out
}

// walkDocs visits the leaves walk visits, with each one's field and its
// meaning: the sections' doc tags, then its own, joined by ": ".
func walkDocs(v reflect.Value, prefix, parentDoc string, leaf func(key, doc string, f reflect.StructField, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		doc := f.Tag.Get("doc")
		if parentDoc != "" && doc != "" {
			doc = parentDoc + ": " + doc
		} else if doc == "" {
			doc = parentDoc
		}
		if f.Type.Kind() == reflect.Struct {
			walkDocs(v.Field(i), key, doc, leaf)
			continue
		}
		if f.Tag.Get("doc") == "" {
			doc = "" // a leaf without its own meaning is missing one
		}
		leaf(key, doc, f, v.Field(i))
	}
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
