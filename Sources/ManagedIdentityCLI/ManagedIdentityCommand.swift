import ArgumentParser
import Foundation

@main
struct ManagedIdentityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "managed-identity",
        abstract: "Get Azure managed identity tokens, cache them, and emulate every managed identity endpoint.",
        discussion: """
            Examples:
              managed-identity token --emulator --resource https://vault.azure.net
              managed-identity token --resource https://management.azure.com --client-id <id>
              managed-identity emulator --source app-service --env-file emulator.env
              managed-identity cache list
              managed-identity doctor
            """,
        subcommands: [TokenCommand.self, DoctorCommand.self, EmulatorCommand.self, CacheCommand.self]
    )
}
