package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "mandate",
		Short:         "Identity and access server for AI agents, speaking SpiceDB's v1 API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand())
	root.AddCommand(newMigrateCommand())
	root.AddCommand(newAgentCommand())
	root.AddCommand(newCheckCommand())
	root.AddCommand(newRelationshipCommand())
	root.AddCommand(newDelegationCommand())
	root.AddCommand(newAuditCommand())
	root.AddCommand(newReviewCommand())
	root.AddCommand(newLoadtestCommand())
	root.AddCommand(newValidateCommand())
	return root
}

// bindEnv sets every flag the user did not pass from its MANDATE_*
// environment variable: --grpc-addr reads MANDATE_GRPC_ADDR.
func bindEnv(flags *pflag.FlagSet) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "MANDATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if setErr := flags.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("environment variable %s=%q: %w", name, v, setErr)
			}
		}
	})
	return err
}

func newLogger(level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("invalid --log-level %q: use trace, debug, info, warn or error", level)
	}
	var logger zerolog.Logger
	switch format {
	case "json":
		logger = zerolog.New(os.Stderr)
	case "console":
		logger = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr})
	default:
		return zerolog.Logger{}, fmt.Errorf("invalid --log-format %q: use json or console", format)
	}
	return logger.Level(lvl).With().Timestamp().Logger(), nil
}
