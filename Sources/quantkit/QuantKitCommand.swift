import ArgumentParser

/// `quantkit`: the command-line front end. Subcommands live in their own files; `info` is the default so that a bare
/// `quantkit` says what the library will do on this machine.
@main
struct QuantKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantkit",
        abstract: "PyTorch-compatible int8/fp16 quantization kernels.",
        subcommands: [Info.self, Train.self, Demo.self],
        defaultSubcommand: Info.self)
}
