package identity

import (
	"net/http"
	"testing"
)

func TestNextPageToken(t *testing.T) {
	tests := []struct {
		name string
		link []string
		want string
	}{
		{"none", nil, ""},
		{"first and next", []string{`</admin/identities?page_size=2&page_token=abc>; rel="first",</admin/identities?page_size=2&page_token=def%3D>; rel="next"`}, "def="},
		{"only first", []string{`</admin/identities?page_size=2&page_token=abc>; rel="first"`}, ""},
		{"separate headers", []string{`</x?page_token=a>; rel="first"`, `</x?page_token=b>; rel="next"`}, "b"},
		{"garbage", []string{`nonsense; rel="next"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{Header: http.Header{}}
			for _, l := range tt.link {
				resp.Header.Add("Link", l)
			}
			if got := nextPageToken(resp); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if nextPageToken(nil) != "" {
		t.Fatal("a missing response has no next page")
	}
}
