package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The calls on the invitation and acceptance paths (create, read, look-up,
// patch) talk to Kratos directly and decode only the fields kratos-orgs
// reads: client-go's generated Identity decodes every answer three times
// (to check required properties, into the struct, and again to collect
// unknown ones), which cost more CPU than the rest of an invitation.

// wireIdentity is the part of Kratos' identity JSON kratos-orgs reads.
type wireIdentity struct {
	ID                  string         `json:"id"`
	SchemaID            string         `json:"schema_id"`
	State               string         `json:"state"`
	Traits              any            `json:"traits"`
	MetadataPublic      map[string]any `json:"metadata_public"`
	MetadataAdmin       map[string]any `json:"metadata_admin"`
	VerifiableAddresses []wireAddress  `json:"verifiable_addresses"`
	CreatedAt           *time.Time     `json:"created_at"`
}

type wireAddress struct {
	Value    string `json:"value"`
	Verified bool   `json:"verified"`
}

// apiError is a non-2xx answer: its status and (the start of) its body,
// which kratosErr classifies.
type apiError struct {
	status string
	body   []byte
}

func (e *apiError) Error() string { return e.status }

// call makes one admin API request with body as JSON (nil: none) and
// decodes a 2xx answer into out (nil: discarded). resp is nil when Kratos
// did not answer; a non-2xx answer is an *apiError. The body is read to
// its end, so the connection is reused.
func (k *Kratos) call(ctx context.Context, method, path string, query url.Values, body, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := k.adminURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kratos-orgs")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp, &apiError{status: resp.Status, body: b}
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, nil
}

// identityPath is the admin API path of one identity.
func identityPath(id string) string { return "/admin/identities/" + url.PathEscape(id) }

// fromWire is what kratos-orgs keeps of an identity.
func (k *Kratos) fromWire(in *wireIdentity) *Identity {
	out := &Identity{ID: in.ID, SchemaID: in.SchemaID, State: in.State, MetadataPublic: in.MetadataPublic, MetadataAdmin: in.MetadataAdmin}
	if t, ok := in.Traits.(map[string]any); ok {
		out.Traits = t
		if e, ok := Trait(t, k.cfg.EmailTrait).(string); ok {
			out.Email = strings.ToLower(strings.TrimSpace(e))
		}
		out.Name = displayName(Trait(t, k.cfg.NameTrait))
	}
	for _, a := range in.VerifiableAddresses {
		out.Addresses = append(out.Addresses, Address(a))
		if !a.Verified {
			continue
		}
		out.VerifiedAddresses = append(out.VerifiedAddresses, strings.ToLower(strings.TrimSpace(a.Value)))
		if strings.EqualFold(a.Value, out.Email) {
			out.Verified = true
		}
	}
	if in.CreatedAt != nil {
		out.CreatedAt = *in.CreatedAt
	}
	if m, ok := in.MetadataAdmin[MarkerKey].(map[string]any); ok && m["created"] == true {
		out.CreatedByUs = true
	}
	return out
}
