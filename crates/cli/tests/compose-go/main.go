// The compose-go checker of tests/init_compose.rs: loads a compose project with compose-go v2
// (the loader `docker compose config` runs) and prints it as JSON, so the test compares what
// `init --from-compose` reads with what compose reads.
//
//	kpproject [--profile P]… FILE…   the project of FILE… (in order), with the process's environment and the .env
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	var files, profiles []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		if args[i] == "--profile" && i+1 < len(args) {
			profiles = append(profiles, args[i+1])
			i++
		} else {
			files = append(files, args[i])
		}
	}
	opts, err := cli.NewProjectOptions(files,
		// The project folder is the first file's, as `docker compose -f` makes it: its .env is read.
		cli.WithWorkingDirectory(filepath.Dir(files[0])), cli.WithOsEnv, cli.WithEnvFiles(), cli.WithDotEnv, cli.WithProfiles(profiles), cli.WithName("kp"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, err := p.MarshalJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(b)
}
