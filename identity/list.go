package identity

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Listed is an identity seen while paging through Kratos, with the time
// Kratos created it (the reconciler's grace period counts from it).
type Listed struct {
	Identity
	CreatedAt time.Time
}

// ListPage reads one page of identities in Kratos' order. token is the
// page token of the previous page's answer ("" for the first page); next
// is "" after the last page. Kratos pages by key set, so identities created
// while a listing runs do not shift pages already read.
func (k *Kratos) ListPage(ctx context.Context, token string, size int) (page []Listed, next string, err error) {
	req := k.api.IdentityAPI.ListIdentities(ctx).PageSize(int64(size))
	if token != "" {
		req = req.PageToken(token)
	}
	list, resp, err := req.Execute()
	if err != nil {
		return nil, "", kratosErr("list identities", resp, err)
	}
	page = make([]Listed, 0, len(list))
	for i := range list {
		l := Listed{Identity: *k.convert(&list[i])}
		if list[i].CreatedAt != nil {
			l.CreatedAt = *list[i].CreatedAt
		}
		page = append(page, l)
	}
	return page, nextPageToken(resp), nil
}

// nextPageToken reads the page_token of the rel="next" entry of a Link
// header, which is how Kratos announces another page.
func nextPageToken(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	for _, h := range resp.Header.Values("Link") {
		for _, part := range strings.Split(h, ",") {
			target, params, ok := strings.Cut(part, ";")
			if !ok || !strings.Contains(params, `rel="next"`) {
				continue
			}
			u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
			if err != nil {
				continue
			}
			if t := u.Query().Get("page_token"); t != "" {
				return t
			}
		}
	}
	return ""
}
