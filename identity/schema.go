package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// TraitValidator checks traits against the identity schema Kratos uses, so
// that a form is refused with field messages before anything is written.
type TraitValidator struct {
	fetch func(ctx context.Context) (map[string]any, error)
	ttl   time.Duration

	mu      sync.Mutex
	schema  *jsonschema.Schema
	fetched time.Time
}

// NewSchemaValidator validates against the schema fetch returns (Kratos'
// identity schema), refreshed every ttl.
func NewSchemaValidator(fetch func(ctx context.Context) (map[string]any, error), ttl time.Duration) *TraitValidator {
	return &TraitValidator{fetch: fetch, ttl: ttl}
}

func (v *TraitValidator) compiled(ctx context.Context) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.schema != nil && time.Since(v.fetched) < v.ttl {
		return v.schema, nil
	}
	doc, err := v.fetch(ctx)
	if err != nil {
		if v.schema != nil {
			return v.schema, nil // a stale schema beats refusing every form
		}
		return nil, err
	}
	// Round-trip through JSON so numbers have the types the compiler expects.
	raw, _ := json.Marshal(doc)
	parsed, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	if err := c.AddResource("kratos-identity.schema.json", parsed); err != nil {
		return nil, err
	}
	s, err := c.Compile("kratos-identity.schema.json")
	if err != nil {
		return nil, err
	}
	v.schema, v.fetched = s, time.Now()
	return s, nil
}

// Validate checks a traits object. Field problems come back as an Invalid
// error whose details map each trait path to a message.
func (v *TraitValidator) Validate(ctx context.Context, traits map[string]any) error {
	s, err := v.compiled(ctx)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(map[string]any{"traits": traits})
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	err = s.Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	fields := map[string]any{}
	p := message.NewPrinter(language.English)
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := e.InstanceLocation
			if len(loc) > 0 && loc[0] == "traits" {
				loc = loc[1:]
			}
			field := strings.Join(loc, ".")
			if _, seen := fields[field]; !seen {
				fields[field] = e.ErrorKind.LocalizedString(p)
			}
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return apperr.Invalidf("invalid_traits", "the form does not match the identity schema").WithDetails("fields", fields)
}
