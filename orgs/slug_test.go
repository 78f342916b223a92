package orgs

import (
	"strings"
	"testing"
)

func TestSlugify(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, want string }{
		{"Acme Corp", "acme-corp"},
		{"Café Münster", "cafe-munster"},
		{"  --Hello__World-- ", "hello-world"},
		{"日本", "org"},
		{"", "org"},
		{"---", "org"},
		{"!!!", "org"},
		{"ACME", "acme"},
		{"Acme, Inc.", "acme-inc"},
		{"R&D 2024", "r-d-2024"},
		{"123", "123"},
		{"Crème Brûlée Ltd", "creme-brulee-ltd"},
		{"Ångström", "angstrom"},
		{"ﬁnance", "finance"},  // ligature folded by NFKD
		{"Ⓐcme", "acme"},       // circled letter
		{"ℌilbert", "hilbert"}, // a letter with no lower case that NFKD turns into "H"
		{"ᴬᴮᶜ Corp", "abc-corp"},
		{"日本 Acme", "acme"},
		{"Acme 日本 Corp", "acme-corp"},
		{"a\tb\nc", "a-b-c"},
		{strings.Repeat("a", MaxSlugLen), strings.Repeat("a", MaxSlugLen)},
		{strings.Repeat("a", MaxSlugLen+10), strings.Repeat("a", MaxSlugLen)},
		// The cut falls right after a hyphen, which must not stay.
		{strings.Repeat("a", MaxSlugLen-1) + " b", strings.Repeat("a", MaxSlugLen-1)},
		{strings.Repeat("a", MaxSlugLen-2) + " bc", strings.Repeat("a", MaxSlugLen-2) + "-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Slugify(tt.name)
			if got != tt.want {
				t.Errorf("Slugify(%q) = %q, want %q", tt.name, got, tt.want)
			}
			if !ValidSlug(got) {
				t.Errorf("Slugify(%q) = %q, which ValidSlug rejects", tt.name, got)
			}
		})
	}
}

func TestSlugifyLongNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		strings.Repeat("Acme Corp ", 20),
		strings.Repeat("ab ", 40),
		strings.Repeat("é-", 100),
		strings.Repeat("x", 1000),
		strings.Repeat("Müller & Söhne ", 10),
	} {
		got := Slugify(name)
		if len(got) > MaxSlugLen || strings.HasSuffix(got, "-") || strings.HasPrefix(got, "-") || !ValidSlug(got) {
			t.Errorf("Slugify(%q) = %q (%d bytes)", name, got, len(got))
		}
		if len(got) < MaxSlugLen-3 {
			t.Errorf("Slugify(%q) = %q: cut far shorter than %d", name, got, MaxSlugLen)
		}
	}
}

func TestValidSlug(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"acme":                             true,
		"a":                                true,
		"0":                                true,
		"acme-corp":                        true,
		"a-b-c-1-2-3":                      true,
		strings.Repeat("a", MaxSlugLen):    true,
		strings.Repeat("a", MaxSlugLen+1):  false,
		"":                                 false,
		"-acme":                            false,
		"acme-":                            false,
		"acme--corp":                       false,
		"Acme":                             false,
		"acme_corp":                        false,
		"acme corp":                        false,
		"acme.corp":                        false,
		"café":                             false,
		"acme\n":                           false,
		"org_0123456789abcdefghjkmnpqrstv": false,
	} {
		if got := ValidSlug(s); got != want {
			t.Errorf("ValidSlug(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzSlugify(f *testing.F) {
	for _, s := range []string{
		"Acme Corp", "Café Münster", "  --Hello__World-- ", "日本", "ℌ", "ᴬ", "\xff\xfe", "",
		strings.Repeat("a", MaxSlugLen-1) + " b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := Slugify(name)
		if !ValidSlug(got) {
			t.Fatalf("Slugify(%q) = %q, which ValidSlug rejects", name, got)
		}
		// A slug is its own slug.
		if again := Slugify(got); again != got {
			t.Errorf("Slugify(%q) = %q, but Slugify(%q) = %q", name, got, got, again)
		}
	})
}
