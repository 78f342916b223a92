package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// FlowKinds are the self-service flows kratos-orgs' UI renders.
var FlowKinds = []string{"login", "registration", "settings", "recovery", "verification"}

// Flow reads a browser flow of Kratos' public API as the browser that owns
// it (its Cookie header, which carries Kratos' CSRF cookie), into out.
// status is Kratos' answer: 200, or 403/404/410 for a flow that is not this
// browser's, unknown or expired (the UI starts a new one).
func (k *Kratos) Flow(ctx context.Context, cookie, kind, id string, out any) (status int, err error) {
	if !validKind(kind) {
		return 0, fmt.Errorf("kratos: unknown flow kind %q", kind)
	}
	return k.publicGet(ctx, cookie, "/self-service/"+kind+"/flows?id="+url.QueryEscape(id), out)
}

// FlowError reads the error Kratos' UI is sent to show.
func (k *Kratos) FlowError(ctx context.Context, cookie, id string, out any) (status int, err error) {
	return k.publicGet(ctx, cookie, "/self-service/errors?id="+url.QueryEscape(id), out)
}

// BrowserFlowURL is where a browser starts a new flow of a kind.
func (k *Kratos) BrowserFlowURL(kind, returnTo string) string {
	u := strings.TrimRight(k.cfg.PublicURL, "/") + "/self-service/" + kind + "/browser"
	if returnTo != "" {
		u += "?return_to=" + url.QueryEscape(returnTo)
	}
	return u
}

func validKind(kind string) bool {
	for _, k := range FlowKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// publicGet is a GET on Kratos' public API with the browser's cookies.
func (k *Kratos) publicGet(ctx context.Context, cookie, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(k.cfg.PublicURL, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("kratos: GET %s: %w", req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("kratos: GET %s: %w", req.URL.Path, err)
		}
	}
	return resp.StatusCode, nil
}
