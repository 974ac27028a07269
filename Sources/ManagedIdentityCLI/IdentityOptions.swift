import ArgumentParser
import ManagedIdentity

/// Which identity and source a command asks for; `token` and `doctor` share them.
struct IdentityOptions: ParsableArguments {
    @Option(name: .customLong("client-id"), help: "The user-assigned identity with this client id.")
    var clientID: String?

    @Option(name: .customLong("object-id"), help: "The user-assigned identity with this object (principal) id.")
    var objectID: String?

    @Option(name: .customLong("resource-id"), help: "The user-assigned identity with this ARM resource id.")
    var resourceID: String?

    @Option(help: "The managed identity source, instead of detecting it: \(ManagedIdentitySource.allValueStrings.joined(separator: ", ")).")
    var source: ManagedIdentitySource?

    @Option(
        name: .customLong("ca-file"),
        help: "Workload identity: a PEM file of certificates to trust for the authority instead of the system's (the emulator's ca_file).")
    var caFile: String?

    @Option(help: "The directory Azure Arc key files must be in (default: the platform's).")
    var arcKeyDir: String?

    /// The identity named, or the system-assigned one.
    var identity: ManagedIdentityID {
        if let clientID { return .clientID(clientID) }
        if let objectID { return .objectID(objectID) }
        if let resourceID { return .resourceID(resourceID) }
        return .systemAssigned
    }

    func validate() throws {
        if [clientID, objectID, resourceID].compactMap({ $0 }).count > 1 {
            throw ValidationError("Give at most one of --client-id, --object-id and --resource-id.")
        }
    }
}
