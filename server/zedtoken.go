package server

import (
	"encoding/base64"
	"errors"
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
// encodeToken produces, so each revision has one token.
func decodeToken(t *v1.ZedToken) (graph.Revision, error) {
	raw, err := decodeCanonicalBase64(t.GetToken())
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

// decodeCanonicalBase64 decodes unpadded base64url that encodes its bytes
// the one way the encoder does. The decoder alone also accepts line
// breaks anywhere and, without Strict, unused trailing bits that are not
// zero.
func decodeCanonicalBase64(s string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.RawURLEncoding.EncodeToString(raw) != s {
		return nil, errors.New("not in canonical base64url form")
	}
	return raw, nil
}
