import HTTPWire

/// What one client connection is doing, as a value: the request in progress, the parts of
/// pipelined requests waiting behind it, the wait for a shared rate-limit decision, whether
/// reading is paused, shutdown (quiescing), the client's half-close, and a malformed request owed
/// its answer. Each event returns what the connection must do; `ProxyHandler` does it and keeps no
/// other flags. After swift-nio's `HTTPServerPipelineHandler.ConnectionState`.
///
/// Requests are answered one at a time and in order (RFC 9112 §9.3.2): a head that arrives while a
/// request is in progress waits here, and reading pauses until the queue is worked off.
///
/// Generic over the request and the part so its value tests need no channel.
struct ConnectionState<Request: AnyObject, Part> {
    /// The request being answered: from its head until both its end was read and its response written.
    private(set) var current: Request?
    /// Parts that arrived behind the current request (or during an admission wait).
    private var queue: [(part: Part, isHead: Bool)] = []
    private(set) var readingPaused = false
    /// The current request waits for a shared rate-limit decision: its own parts wait too.
    private(set) var awaitingAdmission = false
    /// Shutting down: close once the request in progress (if any) is answered.
    private(set) var quiescing = false
    /// The client half-closed (or closed: on a read the two look alike): no request follows those
    /// already received, which are still answered; then the connection closes.
    private(set) var inputClosed = false
    /// A malformed request followed the current one: its error answer is owed after it.
    private(set) var pendingError: WireError?
    /// The queue is being worked off: a request completing meanwhile does not start a second pass.
    private var draining = false
    /// A response that ends the connection was written: nothing read after it is processed
    /// (RFC 9112 §9.6), though the close may take until its bytes are flushed.
    private(set) var closing = false

    // MARK: Reading

    enum ReadAction: Equatable {
        /// Hand the part to the request path now.
        case process
        /// The part waits in the queue; pause reading if asked.
        case hold(pauseReading: Bool)
        /// The connection is closing: the part is dropped.
        case discard
    }

    /// A part was decoded from the socket. It is taken (copied) only when it has to wait.
    mutating func read(_ part: @autoclosure () -> Part, isHead: Bool) -> ReadAction {
        if closing { return .discard }
        guard !queue.isEmpty || awaitingAdmission || (current != nil && isHead) else { return .process }
        queue.append((part(), isHead))
        guard !readingPaused else { return .hold(pauseReading: false) }
        readingPaused = true
        return .hold(pauseReading: true)
    }

    /// A request's head was processed: it is now in progress.
    mutating func begin(_ request: Request) {
        current = request
    }

    /// Whether `request` is the one in progress (a callback for a request that ended is ignored).
    func isCurrent(_ request: Request) -> Bool { current === request }

    /// The request is over on both sides. False when it was not the one in progress.
    mutating func complete(_ request: Request) -> Bool {
        guard current === request else { return false }
        current = nil
        return true
    }

    // MARK: Working off the queue

    enum Step {
        /// Hand this queued part to the request path, then ask again.
        case process(Part)
        /// Turn reading back on, then ask again.
        case resumeReading
        /// Answer the malformed request that was waiting (then the connection closes).
        case respondMalformed(WireError)
        /// Close the connection: shutdown, or the client sent its last request.
        case close
        /// Nothing to do until the request in progress ends.
        case wait
    }

    /// Starts working off the queue; false when already doing so (a re-entrant call returns at once).
    mutating func beginDraining() -> Bool {
        guard !draining, !awaitingAdmission else { return false }
        draining = true
        return true
    }

    mutating func endDraining() { draining = false }

    /// What to do next while draining. The body and end of a request just started belong to it and
    /// go through at once; the next head waits for the request in progress.
    mutating func nextStep() -> Step {
        if closing { return .wait }
        if let next = queue.first, current == nil || !next.isHead {
            queue.removeFirst()
            return .process(next.part)
        }
        guard queue.isEmpty else { return .wait }
        if readingPaused && pendingError == nil && !inputClosed {
            readingPaused = false
            return .resumeReading
        }
        guard current == nil else { return .wait }
        if let error = pendingError {
            pendingError = nil
            return .respondMalformed(error)
        }
        return quiescing || inputClosed ? .close : .wait
    }

    // MARK: Admission

    mutating func awaitAdmission() { awaitingAdmission = true }

    mutating func admissionDecided() { awaitingAdmission = false }

    // MARK: Ending

    /// Shutdown began. True when the connection can close now (nothing in progress or waiting).
    mutating func quiesce() -> Bool {
        quiescing = true
        return current == nil && queue.isEmpty
    }

    enum HalfCloseAction: Equatable {
        case none
        case close
        /// Abandon the request in progress (its exchanges are cut) and close.
        case abandonAndClose
    }

    /// The client shut its sending side. What it sent is answered (RFC 9112 §9.6 lets a client
    /// half-close after its last request), unless `abandons` says the request in progress goes
    /// with it (a tunnel, or a forward under `limits.client_half_close: abort`).
    mutating func inputClosed(abandons: (Request) -> Bool) -> HalfCloseAction {
        inputClosed = true
        guard let current else { return queue.isEmpty && pendingError == nil ? .close : .none }
        guard abandons(current) else { return .none }
        queue.removeAll()
        return .abandonAndClose
    }

    /// The response being written is the last the connection carries: the request asked to close,
    /// shutdown is under way, or the client sends no more.
    func closesAfter(keepAlive: Bool) -> Bool {
        !keepAlive || quiescing || (inputClosed && pendingError == nil && !queue.contains { $0.isHead })
    }

    enum MalformedAction: Equatable {
        /// Answer it now (431 or 400), then close.
        case respond
        /// Answer it after the request in progress (or the ones queued before it).
        case deferred
        /// The malformed bytes belong to the request in progress, which can never end: abandon it;
        /// answer the error if its response has not started, else just close.
        case abandonCurrent
    }

    /// The parser rejected bytes. `currentRequestEnded` tells whether the request in progress (if
    /// any) had been read to its end, so the bytes begin a new request.
    mutating func malformed(_ error: WireError, currentRequestEnded: Bool) -> MalformedAction {
        guard current != nil else {
            if queue.isEmpty { return .respond }
            pendingError = error
            return .deferred
        }
        guard currentRequestEnded else {
            queue.removeAll()
            return .abandonCurrent
        }
        pendingError = error
        return .deferred
    }

    /// The response in progress was cut off: the connection closes, and nothing queued is answered.
    mutating func responseAborted() {
        willClose()
    }

    /// A response that closes the connection is being written (or the connection closes without
    /// one): what is queued, and whatever arrives from now on, is dropped.
    mutating func willClose() {
        closing = true
        queue.removeAll()
    }
}
