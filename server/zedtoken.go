package server

import (
	"encoding/base64"
	"strconv"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mandate-iam/mandate/graph"
)

// tokenPrefix marks the version of Mandate's ZedToken encoding. Clients
// treat tokens as opaque; the encoding is the revision in decimal.
const tokenPrefix = "mdt1:"

func encodeToken(rev graph.Revision) *v1.ZedToken {
	raw := tokenPrefix + strconv.FormatUint(uint64(rev), 10)
	return &v1.ZedToken{Token: base64.RawURLEncoding.EncodeToString([]byte(raw))}
}

// decodeToken returns the revision in a ZedToken, or an InvalidArgument
// error that quotes the token. It accepts only the encoding that
// encodeToken produces, so each revision has one token: strict base64
// rejects an encoding whose unused trailing bits are not zero.
func decodeToken(t *v1.ZedToken) (graph.Revision, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(t.GetToken())
	if err != nil {
		return 0, invalidArgument("invalid zedtoken %q: not a token issued by Mandate", t.GetToken())
	}
	digits, ok := strings.CutPrefix(string(raw), tokenPrefix)
	if !ok {
		return 0, invalidArgument("invalid zedtoken %q: not a token issued by Mandate", t.GetToken())
	}
	rev, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || strconv.FormatUint(rev, 10) != digits {
		return 0, invalidArgument("invalid zedtoken %q: malformed revision", t.GetToken())
	}
	return graph.Revision(rev), nil
}
