import Foundation

/// What a session asks for next: for each key, the keys the same session asked for within
/// `window` after it, counted with exponential decay (time constant `tau`), the top `successors`
/// per key (space-saving: a newcomer takes the weakest slot and its count). Bounded: at most
/// `maxKeys` keys with successors and `maxSessions` sessions remembered. Pure: times in
/// nanoseconds, passed in.
public struct SuccessorModel<Key: Hashable & Sendable, Session: Hashable & Sendable>: Sendable {
    public struct Prediction: Sendable, Equatable {
        public let key: Key
        /// The share of the key's successors that were this one (decayed counts).
        public let probability: Double
    }

    /// How a shadow prediction turned out, when the session's next request came.
    public struct Outcome: Sendable, Equatable {
        /// Keys predicted for the session after its previous request.
        public let predicted: Int
        /// Of those, the one it did ask for (0 or 1).
        public let correct: Int

        public init(predicted: Int, correct: Int) {
            self.predicted = predicted
            self.correct = correct
        }
    }

    struct Successor: Sendable {
        var key: Key
        var count: Double
    }

    struct Transitions: Sendable {
        var successors: [Successor] = []
        var total: Double = 0
        var updatedAt: Int64
    }

    struct Last: Sendable {
        var key: Key
        var at: Int64
        var predicted: [Key]
    }

    public let window: Int64
    public let tau: Double
    public let successors: Int
    public let maxKeys: Int
    public let maxSessions: Int
    private var transitions: [Key: Transitions] = [:]
    private var sessions: [Session: Last] = [:]
    private var sweptAt: Int64?

    public init(window: Int64 = 5_000_000_000, tau: Double = 600, successors: Int = 4, maxKeys: Int = 100_000, maxSessions: Int = 100_000) {
        self.window = max(1, window)
        self.tau = max(0.001, tau)
        self.successors = max(1, successors)
        self.maxKeys = max(1, maxKeys)
        self.maxSessions = max(1, maxSessions)
    }

    public var keyCount: Int { transitions.count }
    public var sessionCount: Int { sessions.count }

    /// `session` asked for `key` at `now`: counts the step from its previous key (when that was
    /// within `window`), scores the predictions made after it, and returns the successors of
    /// `key` at least `minimum` likely (most likely first), which become the session's predictions.
    public mutating func observe(_ key: Key, session: Session, at now: Int64, minimum: Double) -> (predictions: [Prediction], outcome: Outcome?) {
        var outcome: Outcome?
        if let last = sessions[session], now >= last.at, now &- last.at <= window {
            if last.key != key { count(from: last.key, to: key, at: now) }
            if !last.predicted.isEmpty { outcome = Outcome(predicted: last.predicted.count, correct: last.predicted.contains(key) ? 1 : 0) }
        }
        let predictions = predict(after: key, at: now, minimum: minimum)
        remember(session, Last(key: key, at: now, predicted: predictions.map(\.key)))
        return (predictions, outcome)
    }

    /// The successors of `key` at least `minimum` likely, most likely first.
    public func predict(after key: Key, at now: Int64, minimum: Double) -> [Prediction] {
        guard let t = transitions[key], t.total > 0 else { return [] }
        return t.successors.map { Prediction(key: $0.key, probability: $0.count / t.total) }
            .filter { $0.probability >= minimum }
            .sorted { $0.probability > $1.probability }
    }

    private mutating func count(from previous: Key, to next: Key, at now: Int64) {
        if transitions[previous] == nil {
            guard makeRoom() else { return }
            transitions[previous] = Transitions(updatedAt: now)
        }
        guard var t = transitions[previous] else { return }
        // Decay the whole row to now, then add one.
        let factor = exp(-Double(max(0, now - t.updatedAt)) / 1e9 / tau)
        t.total = t.total * factor + 1
        for i in t.successors.indices { t.successors[i].count *= factor }
        t.updatedAt = now
        if let i = t.successors.firstIndex(where: { $0.key == next }) {
            t.successors[i].count += 1
        } else if t.successors.count < successors {
            t.successors.append(Successor(key: next, count: 1))
        } else if let weakest = t.successors.indices.min(by: { t.successors[$0].count < t.successors[$1].count }) {
            t.successors[weakest] = Successor(key: next, count: t.successors[weakest].count + 1)
        }
        transitions[previous] = t
    }

    /// Frees a slot for a new key when the table is full: the least followed of a few (the
    /// dictionary's order is arbitrary enough to sample from). False if none could go.
    private mutating func makeRoom() -> Bool {
        guard transitions.count >= maxKeys else { return true }
        guard let victim = transitions.prefix(8).min(by: { $0.value.total < $1.value.total })?.key else { return false }
        transitions[victim] = nil
        return true
    }

    private mutating func remember(_ session: Session, _ last: Last) {
        if sessions[session] == nil, sessions.count >= maxSessions {
            // Once a window at most, forget every session idle past it; between sweeps, the
            // oldest of a few goes.
            if sweptAt.map({ last.at &- $0 > window }) ?? true {
                let cutoff = last.at - window
                sessions = sessions.filter { $0.value.at >= cutoff }
                sweptAt = last.at
            }
            if sessions.count >= maxSessions, let oldest = sessions.prefix(8).min(by: { $0.value.at < $1.value.at })?.key {
                sessions[oldest] = nil
            }
        }
        sessions[session] = last
    }
}
