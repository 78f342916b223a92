// Command kratos is Ory Kratos v1.3.1 built as an ordinary module dependency,
// so tests and `make dev` run the real server without copying its source.
package main

import (
	"os"

	"github.com/ory/kratos/cmd"
)

func main() { os.Exit(cmd.Execute()) }
