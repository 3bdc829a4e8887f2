package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	mandatev1 "github.com/mandate-iam/mandate/api/mandate/v1"
	"github.com/mandate-iam/mandate/audit"
)

func newAuditCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query, export and verify the audit log of a running server",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd.Flags())
		},
	}
	o.bind(cmd.PersistentFlags())
	client := func() (mandatev1.AuditServiceClient, func(), error) {
		conn, err := o.dial()
		if err != nil {
			return nil, nil, err
		}
		return mandatev1.NewAuditServiceClient(conn), func() { conn.Close() }, nil
	}
	cmd.AddCommand(newAuditQueryCommand(client, "query", "Print matching records, one JSON object per line"),
		newAuditQueryCommand(client, "export", "Stream every matching record as JSON lines, for archiving"),
		newAuditVerifyCommand(client))
	return cmd
}

type auditClientFunc func() (mandatev1.AuditServiceClient, func(), error)

// maxTreeHeadsMessage bounds the response with every signed tree head,
// which grows by about 175 bytes per group commit and passes gRPC's
// default limit of 4 MiB at about 24,000 commits.
// NOTE: GetTreeHeads returns all heads in one message, so a log of more
// than about 6 million commits needs a paged call.
const maxTreeHeadsMessage = 1 << 30

func newAuditQueryCommand(client auditClientFunc, name, short string) *cobra.Command {
	var req mandatev1.QueryRecordsRequest
	var since, until time.Duration
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			if since > 0 {
				req.Since = timestamppb.New(now.Add(-since))
			}
			if until > 0 {
				req.Until = timestamppb.New(now.Add(-until))
			}
			c, done, err := client()
			if err != nil {
				return err
			}
			defer done()
			stream, err := c.QueryRecords(cmd.Context(), &req)
			if err != nil {
				return err
			}
			marshal := protojson.MarshalOptions{UseProtoNames: true}
			for {
				rec, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				b, err := marshal.Marshal(rec)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Agent, "agent", "", "records whose principal, subject or chain is this agent id")
	f.StringVar(&req.Resource, "resource", "", "records about this resource, such as dataset:payroll")
	f.StringVar(&req.Result, "result", "", "records with this result, such as no_permission")
	f.StringVar(&req.Delegation, "delegation", "", "records made through this delegation id")
	f.StringVar(&req.Kind, "kind", "", "check, lookup_resources, lookup_subjects, write, schema, delegation or lifecycle")
	f.DurationVar(&since, "since", 0, "only records newer than this long ago, such as 24h")
	f.DurationVar(&until, "until", 0, "only records older than this long ago")
	f.Uint32Var(&req.Limit, "limit", 0, "stop after this many records (0: all)")
	return cmd
}

func newAuditVerifyCommand(client auditClientFunc) *cobra.Command {
	var publicKeyHex, trustedHeadFile, saveHeadFile string
	var seq int64
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the Merkle tree from every record and check every signed tree head",
		Long: `Fetch every record's stored bytes and every signed tree head, recompute the
Merkle tree here, and report any record that was edited, removed or
reordered. Pin the server's key with --public-key (printed in the server's
"configured audit log" line) so a rewritten log with a new key is caught.
--seq also checks one record's inclusion proof against the latest head;
--trusted-head checks that a head saved earlier (with --save-head) is a
prefix of today's log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, done, err := client()
			if err != nil {
				return err
			}
			defer done()
			headsResp, err := c.GetTreeHeads(ctx, &mandatev1.GetTreeHeadsRequest{All: true},
				grpc.MaxCallRecvMsgSize(maxTreeHeadsMessage))
			if err != nil {
				return err
			}
			pub := ed25519.PublicKey(headsResp.GetPublicKey())
			if publicKeyHex != "" {
				pinned, err := hex.DecodeString(publicKeyHex)
				if err != nil || len(pinned) != ed25519.PublicKeySize {
					return fmt.Errorf("invalid --public-key %q: want %d bytes in hex", publicKeyHex, ed25519.PublicKeySize)
				}
				if !pub.Equal(ed25519.PublicKey(pinned)) {
					return fmt.Errorf("the server's audit key %x is not the pinned key %s", []byte(pub), publicKeyHex)
				}
			}
			v := &audit.Verifier{PublicKey: pub}
			stream, err := c.ExportRaw(ctx, &mandatev1.ExportRawRequest{})
			if err != nil {
				return err
			}
			raw := map[uint64][]byte{}
			for {
				r, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return err
				}
				var stored audit.Hash
				copy(stored[:], r.GetLeafHash())
				v.AddRecord(r.GetSeq(), r.GetData(), stored)
				if int64(r.GetSeq()) == seq {
					raw[r.GetSeq()] = r.GetData()
				}
			}
			var latest audit.TreeHead
			for _, h := range headsResp.GetHeads() {
				th := headFromProto(h)
				v.AddHead(th)
				latest = th
			}
			report := v.Finish()
			if latest.Size != report.Records {
				report.Problems = append(report.Problems, fmt.Sprintf(
					"the latest tree head covers %d records but %d are present", latest.Size, report.Records))
			}
			if seq >= 0 {
				if err := verifyInclusion(cmd, c, uint64(seq), raw[uint64(seq)], latest); err != nil {
					report.Problems = append(report.Problems, err.Error())
				}
			}
			if trustedHeadFile != "" {
				if err := verifyAgainstTrusted(cmd, c, trustedHeadFile, pub, latest); err != nil {
					report.Problems = append(report.Problems, err.Error())
				}
			}
			if saveHeadFile != "" {
				b, _ := json.MarshalIndent(latest, "", "  ")
				if err := os.WriteFile(saveHeadFile, b, 0o644); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "records: %d\ntree heads: %d\nroot: %x\n", report.Records, report.Heads, report.Root[:])
			if len(report.Problems) > 0 {
				for _, p := range report.Problems {
					fmt.Fprintln(out, "PROBLEM:", p)
				}
				return fmt.Errorf("audit log verification failed with %d problems", len(report.Problems))
			}
			fmt.Fprintln(out, "verified: every record matches the signed tree heads")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&publicKeyHex, "public-key", "", "hex Ed25519 key the tree heads must be signed with")
	f.Int64Var(&seq, "seq", -1, "also verify the inclusion proof of this record")
	f.StringVar(&trustedHeadFile, "trusted-head", "", "JSON tree head saved earlier; verify today's log extends it")
	f.StringVar(&saveHeadFile, "save-head", "", "write the latest tree head as JSON to this file")
	return cmd
}

func headFromProto(h *mandatev1.TreeHead) audit.TreeHead {
	th := audit.TreeHead{Size: h.GetSize(), Time: h.GetTime().AsTime(), Signature: h.GetSignature()}
	copy(th.Root[:], h.GetRootHash())
	return th
}

func verifyInclusion(cmd *cobra.Command, c mandatev1.AuditServiceClient, seq uint64, data []byte, head audit.TreeHead) error {
	if data == nil {
		return fmt.Errorf("record %d is not in the log", seq)
	}
	resp, err := c.GetInclusionProof(cmd.Context(), &mandatev1.GetInclusionProofRequest{Seq: seq, TreeSize: head.Size})
	if err != nil {
		return err
	}
	if err := audit.VerifyInclusion(seq, head.Size, audit.LeafHash(data), hashesOf(resp), head.Root); err != nil {
		return fmt.Errorf("record %d: %w", seq, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "record %d: inclusion proof verified against the head of size %d\n", seq, head.Size)
	return nil
}

func verifyAgainstTrusted(cmd *cobra.Command, c mandatev1.AuditServiceClient, path string, pub ed25519.PublicKey, latest audit.TreeHead) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var old audit.TreeHead
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("read trusted head %s: %w", path, err)
	}
	if err := old.Verify(pub); err != nil {
		return fmt.Errorf("trusted head %s: %w", path, err)
	}
	if old.Size == 0 {
		return nil
	}
	resp, err := c.GetConsistencyProof(cmd.Context(), &mandatev1.GetConsistencyProofRequest{OldSize: old.Size, NewSize: latest.Size})
	if err != nil {
		return err
	}
	if err := audit.VerifyConsistency(old.Size, latest.Size, old.Root, latest.Root, hashesOf(resp)); err != nil {
		return fmt.Errorf("trusted head of size %d: %w", old.Size, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "consistency proof verified: the trusted head of size %d is a prefix of the log of size %d\n", old.Size, latest.Size)
	return nil
}

func hashesOf(resp *mandatev1.ProofResponse) []audit.Hash {
	out := make([]audit.Hash, len(resp.GetHashes()))
	for i, h := range resp.GetHashes() {
		copy(out[i][:], h)
	}
	return out
}
