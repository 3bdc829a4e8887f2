package sqlstore_test

import (
	"os"
	"testing"

	"github.com/mandate-iam/mandate/graph/sqlstore/pgtest"
)

// TestMain stops the PostgreSQL server that the tests share, once they
// have run.
func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }
