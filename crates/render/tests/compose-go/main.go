// The compose-go checker of render's tests/compose.rs and the cli's tests/init_compose.rs:
// compose-go's dotenv parser and project loader (the code `docker compose` runs), built from
// the Go module proxy where Go is installed.
//
//	kpcheck dotenv FILE                    prints FILE's variables as JSON, as compose reads them
//	kpcheck config COMPOSE_FILE ENV_FILE…  loads the project as `docker compose config` does
//	kpcheck project [--profile P]… FILE…   the project of FILE… (in order), with the process's
//	                                       environment and the first file's .env, as JSON
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
)

func main() {
	switch os.Args[1] {
	case "dotenv":
		env, err := dotenv.Read(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(env)
	case "config":
		opts, err := cli.NewProjectOptions([]string{os.Args[2]}, cli.WithEnvFiles(os.Args[3:]...), cli.WithDotEnv)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := p.MarshalYAML()
		os.Stdout.Write(b)
	case "project":
		var files, profiles []string
		args := os.Args[2:]
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
}
