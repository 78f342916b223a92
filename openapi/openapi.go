// Package openapi holds the OpenAPI 3 document describing every route of
// both listeners (openapi.yaml), embedded in the binary and served on the
// admin listener at GET /openapi.yaml. Package openapitest checks real
// responses against it in tests.
package openapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.yaml
var document []byte

// ContentType is the media type the document is served with.
const ContentType = "application/yaml"

// Document returns the OpenAPI document (YAML). The slice is shared: do
// not modify it.
func Document() []byte { return document }

// Serve writes the document.
func Serve(c *gin.Context) {
	c.Data(http.StatusOK, ContentType, document)
}
