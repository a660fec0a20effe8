package e2e

import (
	"os"
	"testing"

	"github.com/konstruct/konstruct/internal/testkit/platform"
)

func TestMain(m *testing.M) {
	code := m.Run()
	platform.RemoveBinary()
	os.Exit(code)
}
