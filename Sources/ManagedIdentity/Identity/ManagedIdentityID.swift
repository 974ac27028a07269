/// The managed identity a client asks tokens for.
///
/// A host has at most one system-assigned identity and any number of user-assigned ones. A
/// user-assigned identity can be named by its client id, its ARM resource id or its object
/// (principal) id; each source spells the selector differently on the wire, and some sources accept
/// only some kinds (see ``ManagedIdentitySource``).
public enum ManagedIdentityID: Hashable, Sendable, CustomStringConvertible {
    /// The host's system-assigned identity.
    case systemAssigned
    /// A user-assigned identity named by its client (application) id.
    case clientID(String)
    /// A user-assigned identity named by its ARM resource id.
    case resourceID(String)
    /// A user-assigned identity named by its object (principal) id.
    case objectID(String)

    /// The kind of identity, without its id.
    public var kind: Kind {
        switch self {
        case .systemAssigned: .systemAssigned
        case .clientID: .clientID
        case .resourceID: .resourceID
        case .objectID: .objectID
        }
    }

    /// The user-assigned id, or `nil` for the system-assigned identity.
    public var id: String? {
        switch self {
        case .systemAssigned: nil
        case .clientID(let id), .resourceID(let id), .objectID(let id): id
        }
    }

    /// Whether this is a user-assigned identity.
    public var isUserAssigned: Bool { self != .systemAssigned }

    public var description: String {
        switch self {
        case .systemAssigned: "system-assigned"
        case .clientID(let id): "user-assigned (client id \(id))"
        case .resourceID(let id): "user-assigned (resource id \(id))"
        case .objectID(let id): "user-assigned (object id \(id))"
        }
    }

    /// The kinds of managed identity.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case systemAssigned = "system_assigned"
        case clientID = "client_id"
        case resourceID = "resource_id"
        case objectID = "object_id"
    }

    /// Builds an identity from a kind and an id, as read back from a cache entry or a command line.
    ///
    /// - Returns: `nil` when the id is missing for a user-assigned kind or present for the system-assigned one.
    public init?(kind: Kind, id: String?) {
        switch (kind, id) {
        case (.systemAssigned, nil): self = .systemAssigned
        case (.clientID, let id?): self = .clientID(id)
        case (.resourceID, let id?): self = .resourceID(id)
        case (.objectID, let id?): self = .objectID(id)
        default: return nil
        }
    }

    /// Throws ``ManagedIdentityError/Code/invalidManagedIdentityID`` when a user-assigned id is empty
    /// or only whitespace, so the mistake is caught before any request is sent.
    func validate() throws(ManagedIdentityError) {
        guard let id else { return }
        if id.allSatisfy({ $0.isWhitespace }) {
            throw ManagedIdentityError(
                code: .invalidManagedIdentityID,
                message: "The \(kind.displayName) of a user-assigned managed identity is empty. "
                    + "Pass the identity's \(kind.displayName), or use .systemAssigned."
            )
        }
    }
}

extension ManagedIdentityID.Kind {
    var displayName: String {
        switch self {
        case .systemAssigned: "system-assigned identity"
        case .clientID: "client id"
        case .resourceID: "resource id"
        case .objectID: "object id"
        }
    }
}
