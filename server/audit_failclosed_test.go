package server_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
)

// startFailureFixture starts an audit server with agent:bot, which may
// read dataset:logs, and returns bot's v1 client.
func startFailureFixture(t *testing.T, failOpen bool) (*auditServer, *authzed.Client) {
	t.Helper()
	s := startAuditServer(t, wednesdayMorning, failOpen)
	s.createAgent(t, "create-bot", &mandatev1.CreateAgentRequest{Id: "bot", Owner: "alice", Department: "finance"})
	s.write(t, "grant", v1.RelationshipUpdate_OPERATION_TOUCH, "dataset:logs#reader@agent:bot")
	return s, s.as(t, "bot").v1
}

// storedRequestIDs opens the audit log in dir, which the server no longer
// writes, and counts its records by request id.
func storedRequestIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	l, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatalf("reopen audit log: %v", err)
	}
	defer l.Close()
	out := map[string]int{}
	if err := l.Scan(audit.Query{}, func(r *audit.Record) bool {
		out[r.RequestID]++
		return true
	}); err != nil {
		t.Fatalf("scan audit log: %v", err)
	}
	report, err := audit.VerifyLog(l, l.PublicKey())
	if err != nil {
		t.Fatalf("VerifyLog: %v", err)
	}
	if len(report.Problems) != 0 {
		t.Errorf("VerifyLog found problems: %q", report.Problems)
	}
	return out
}

// lookupErr runs LookupResources and returns the error that ended the
// stream (nil at a clean end) and how many results came before it.
func lookupErr(t *testing.T, client *authzed.Client, requestID string) (int, error) {
	t.Helper()
	stream, err := client.LookupResources(withRequestID(t, requestID), &v1.LookupResourcesRequest{
		Consistency: fullyConsistent(), ResourceObjectType: "dataset", Permission: "read", Subject: subjectRef(t, "agent:bot"),
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func bulkRequest(t *testing.T) *v1.CheckBulkPermissionsRequest {
	t.Helper()
	return &v1.CheckBulkPermissionsRequest{Consistency: fullyConsistent(), Items: []*v1.CheckBulkPermissionsRequestItem{
		{Resource: objectRefOfString(t, "dataset:logs"), Permission: "read", Subject: subjectRef(t, "agent:bot")},
		{Resource: objectRefOfString(t, "dataset:other"), Permission: "read", Subject: subjectRef(t, "agent:bot")},
	}}
}

func TestAuditClosedLogWithholdsDecisions(t *testing.T) {
	s, bot := startFailureFixture(t, false)
	checkWithID(t, bot, "before-close", "dataset:logs", "read", "agent:bot", hasPermission)
	if err := s.log.Close(); err != nil {
		t.Fatalf("close audit log: %v", err)
	}

	resp, err := bot.CheckPermission(withRequestID(t, "check"), checkRequest(t, "dataset:logs", "read", "agent:bot"))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("CheckPermission with the log closed: got %v, want Unavailable", err)
	}
	if resp != nil {
		t.Errorf("CheckPermission with the log closed returned a response: %v", resp)
	}
	bulk, err := bot.CheckBulkPermissions(withRequestID(t, "bulk"), bulkRequest(t))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("CheckBulkPermissions with the log closed: got %v, want Unavailable", err)
	}
	if bulk != nil {
		t.Errorf("CheckBulkPermissions with the log closed returned a response: %v", bulk)
	}
	n, err := lookupErr(t, bot, "lookup")
	if status.Code(err) != codes.Unavailable {
		t.Errorf("LookupResources with the log closed: got %v, want Unavailable", err)
	}
	if n != 0 {
		t.Errorf("LookupResources with the log closed sent %d results before failing, want 0", n)
	}
	if !strings.Contains(s.serverLog.String(), "decision withheld (fail closed)") {
		t.Errorf("server log has no line about the withheld decision:\n%s", s.serverLog.String())
	}

	// A write commits before its record is appended, so it cannot be
	// withheld: it succeeds, and its record is missing.
	s.write(t, "write", v1.RelationshipUpdate_OPERATION_TOUCH, "dataset:more#reader@agent:bot")
	if !strings.Contains(s.serverLog.String(), "audit log write failed for a committed change") {
		t.Errorf("server log has no line about the unrecorded write:\n%s", s.serverLog.String())
	}

	stored := storedRequestIDs(t, s.auditDir)
	if stored["before-close"] != 1 {
		t.Errorf("the check before Close has %d records, want 1", stored["before-close"])
	}
	for _, id := range []string{"check", "bulk", "lookup", "write"} {
		if stored[id] != 0 {
			t.Errorf("request %s has %d records after the log closed, want 0", id, stored[id])
		}
	}
}

func TestAuditFailOpenReturnsUnrecorded(t *testing.T) {
	s, bot := startFailureFixture(t, true)
	if err := s.log.Close(); err != nil {
		t.Fatalf("close audit log: %v", err)
	}

	checkWithID(t, bot, "check", "dataset:logs", "read", "agent:bot", hasPermission)
	bulk, err := bot.CheckBulkPermissions(withRequestID(t, "bulk"), bulkRequest(t))
	if err != nil {
		t.Fatalf("CheckBulkPermissions with the log closed and fail open: %v", err)
	}
	if got := bulk.GetPairs()[0].GetItem().GetPermissionship(); got != hasPermission {
		t.Errorf("bulk item dataset:logs: got %s, want %s", got, hasPermission)
	}
	n, err := lookupErr(t, bot, "lookup")
	if err != nil {
		t.Errorf("LookupResources with the log closed and fail open: %v", err)
	}
	if n != 1 {
		t.Errorf("LookupResources returned %d resources, want 1", n)
	}
	if !strings.Contains(s.serverLog.String(), "answering anyway (fail open)") {
		t.Errorf("server log has no line about the unrecorded decision:\n%s", s.serverLog.String())
	}

	stored := storedRequestIDs(t, s.auditDir)
	for _, id := range []string{"check", "bulk", "lookup"} {
		if stored[id] != 0 {
			t.Errorf("request %s has %d records after the log closed, want 0", id, stored[id])
		}
	}
}
