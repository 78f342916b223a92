package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "KRATOS_ORGS_"

// Load reads the YAML file at path (none when path is empty), applies the
// environment overrides found through getenv, and validates the result.
// Unknown keys in the file are errors, so a typo never silently falls back
// to a default.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		// An empty file is io.EOF: all defaults.
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return cfg, err
	}
	if err := applyEndpointSecretsEnv(&cfg, getenv); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// EnvKeys lists every key with the environment variable that overrides it,
// in declaration order.
func EnvKeys() [][2]string {
	var out [][2]string
	_ = walk(reflect.ValueOf(Default()), "", "", func(l leaf) error {
		out = append(out, [2]string{l.Key, envName(l.Key)})
		return nil
	})
	return out
}

func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// applyEnv walks the struct by yaml tags; each leaf has exactly one
// environment variable, so there is no guessing which key FOO_BAR_BAZ means.
func applyEnv(cfg *Config, getenv func(string) string) error {
	if getenv == nil {
		return nil
	}
	return walk(reflect.ValueOf(cfg).Elem(), "", "", func(l leaf) error {
		key, v := l.Key, l.Value
		raw := getenv(envName(key))
		if raw == "" {
			return nil
		}
		if err := setFromString(v, raw); err != nil {
			return fmt.Errorf("config: %s (from %s): %w", key, envName(key), err)
		}
		return nil
	})
}

// leaf is one configuration key, as walk visits it.
type leaf struct {
	Key   string // dotted yaml path: invitations.ttl
	Doc   string // its meaning: the sections' doc tags, then its own, joined by ": "; "" when it has none of its own
	Field reflect.StructField
	Value reflect.Value
}

// walk visits every leaf of a configuration struct by yaml tags, in
// declaration order; prefix and parentDoc are those of the section v is.
// The one walker behind environment variables, EnvKeys and KeyDocs.
func walk(v reflect.Value, prefix, parentDoc string, visit func(leaf) error) error {
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
			if err := walk(v.Field(i), key, doc, visit); err != nil {
				return err
			}
			continue
		}
		if f.Tag.Get("doc") == "" {
			doc = "" // a leaf without its own meaning is missing one
		}
		if err := visit(leaf{Key: key, Doc: doc, Field: f, Value: v.Field(i)}); err != nil {
			return err
		}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func setFromString(v reflect.Value, raw string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration (like 30s, 168h): %q", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		v.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		v.SetFloat(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem() == durationType {
			return setDurations(v, raw)
		}
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("a list of objects cannot come from the environment; set it in the file")
		}
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// setDurations reads a comma-separated list of durations ("48h, 24h").
func setDurations(v reflect.Value, raw string) error {
	var items []time.Duration
	for _, s := range strings.Split(raw, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a list of durations (like 48h,24h): %q", raw)
		}
		items = append(items, d)
	}
	v.Set(reflect.ValueOf(items))
	return nil
}

// EndpointSecretsEnv names the environment variable that holds an event
// endpoint's signing secrets (comma-separated, newest first):
// KRATOS_ORGS_EVENTS_ENDPOINTS_<ID>_SECRETS, the endpoint's ID upper-cased
// with "-" as "_". The endpoints are a list of objects, which no single
// variable can carry, so their secrets get one variable each: a deployment
// keeps them in a Secret and the endpoints themselves in the config file.
func EndpointSecretsEnv(e EventEndpoint) string {
	return EnvPrefix + "EVENTS_ENDPOINTS_" + strings.ToUpper(strings.ReplaceAll(e.ID(), "-", "_")) + "_SECRETS"
}

// applyEndpointSecretsEnv sets each event endpoint's secrets from its
// variable when that is set (it replaces the file's).
func applyEndpointSecretsEnv(cfg *Config, getenv func(string) string) error {
	if getenv == nil {
		return nil
	}
	byVar := map[string]string{}
	for i := range cfg.Events.Endpoints {
		ep := &cfg.Events.Endpoints[i]
		name := EndpointSecretsEnv(*ep)
		if other, ok := byVar[name]; ok {
			return fmt.Errorf("config: events.endpoints %q and %q share the variable %s; rename one", other, ep.ID(), name)
		}
		byVar[name] = ep.ID()
		if raw := getenv(name); raw != "" {
			if err := setFromString(reflect.ValueOf(&ep.Secrets).Elem(), raw); err != nil {
				return fmt.Errorf("config: events.endpoints[%d].secrets (from %s): %w", i, name, err)
			}
		}
	}
	return nil
}
