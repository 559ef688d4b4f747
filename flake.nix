# kubemint's Nix flake: a development shell with the Rust toolchain and the validators the
# tests and users run, and a package that builds the `xtask` binary (the image generator).
#
#   nix develop                     # shell: rustc, cargo, clippy, rustfmt, rust-analyzer,
#                                   #   cargo-nextest, shellcheck, systemd-analyze, skopeo,
#                                   #   umoci, podman, mksquashfs, mkfs.erofs, sfdisk, sgdisk,
#                                   #   diffoscope, hyperfine, kubectl, ...
#   nix build .#xtask               # -> ./result/bin/xtask
#   nix run .#xtask -- build-image master-1 --sample
#   nix flake check                 # builds the package and runs xtask's unit tests
#   nix fmt                         # formats the Nix files
#
# The xtask binary finds the project (profiles/, images/, vendor/) by walking up from the
# current directory, so run it from inside the checkout; from anywhere else pass the checkout
# explicitly: `nix run .#xtask -- -C /path/to/kubemint build-image master-1 --sample`.
#
# The first Nix command that needs the inputs (or `nix flake lock`) writes flake.lock, which
# pins the exact nixpkgs revision; commit it. In a git checkout Nix only sees tracked files:
# `git add flake.nix` (and any new source file) before building.
#
# The package is built from the Rust sources (Cargo.toml, Cargo.lock, xtask/, the Rust files
# of tests/) plus profiles/ and images/, which xtask's unit tests resolve against; edits to
# docs, CI, vendor/ or this file do not rebuild it.
#
# SOURCE_DATE_EPOCH is deliberately NOT set in the shell: xtask would take it over each
# profile's own `epoch`. (nixpkgs' stdenv exports 315532800 in every `nix develop` shell; the
# shellHook below removes it. Use `--epoch` or export it yourself to override on purpose.)
#
# podman and skopeo also need host configuration Nix cannot provide outside NixOS:
# /etc/containers/policy.json and setuid newuidmap/newgidmap for rootless podman.
{
  description = "kubemint: builds Kubernetes control-plane machines as reproducible images";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      workspaceToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);
      xtaskToml = builtins.fromTOML (builtins.readFile ./xtask/Cargo.toml);

      xtaskFor =
        pkgs:
        pkgs.rustPlatform.buildRustPackage {
          pname = "kubemint-xtask";
          inherit (workspaceToml.workspace.package) version;

          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./Cargo.toml
              ./Cargo.lock
              # Both crates: the xtask binaries and the kubemint library (xtask/kubemint), whose
              # pack/installer.sh and check tables are embedded with include_str!.
              ./xtask
              # xtask's integration-test target (`it`, ../tests/it/main.rs): not run here, but
              # part of the package cargo loads.
              (lib.fileset.fileFilter (file: file.hasExt "rs") ./tests)
              # The bench binary's tests take CARGO_MANIFEST_DIR/.. as the checkout and copy these.
              ./profiles
              ./images
            ];
          };

          cargoLock.lockFile = ./Cargo.lock;

          cargoBuildFlags = [
            "-p"
            "xtask"
            "--bin"
            "xtask"
          ];
          # Only the library's unit tests (seconds). The integration tests in tests/it run the
          # built binary against validators (shellcheck, systemd-analyze, unshare, ...) that the
          # sandbox lacks: run them with `cargo xtask test` in the dev shell.
          cargoTestFlags = [
            "-p"
            "kubemint"
            "--lib"
          ];

          meta = {
            inherit (xtaskToml.package) description;
            license = lib.licenses.asl20;
            mainProgram = "xtask";
            platforms = lib.platforms.linux;
          };
        };
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          xtask = xtaskFor pkgs;
        in
        {
          inherit xtask;
          default = xtask;
        }
      );

      checks = lib.mapAttrs (_system: packages: { inherit (packages) xtask; }) self.packages;

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            # Rust toolchain
            rustc
            cargo
            clippy
            rustfmt
            rust-analyzer
            cargo-nextest

            # Validators used by the tests and by hand
            shellcheck # installer.sh
            systemd # systemd-analyze verify, systemd-sysusers, systemd-tmpfiles
            skopeo
            umoci
            podman
            squashfsTools # mksquashfs, unsquashfs
            erofs-utils # mkfs.erofs, fsck.erofs
            util-linux # sfdisk, unshare, mount
            gptfdisk # sgdisk
            diffoscope # explaining reproducibility differences
            hyperfine # timing builds by hand
            # GNU tar, gzip -n, sha256sum: the shell baseline of `xtask bench`
            gnutar
            gzip
            coreutils
            python3
            kubectl
            chromium # renders the audit report headless (tests/it/report.rs)
          ];

          # rust-analyzer needs the standard library's sources.
          RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";

          # See the header: the profiles, not the shell, choose the epoch.
          shellHook = ''
            unset SOURCE_DATE_EPOCH
          '';
        };
      });

      # nixfmt-rfc-style is plain `nixfmt` from nixpkgs 25.11 on, where the old name warns.
      formatter = forAllSystems (
        pkgs:
        if lib.versionAtLeast lib.trivial.release "25.11" then
          pkgs.nixfmt
        else
          pkgs.nixfmt-rfc-style
      );
    };
}
