// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

interface IERC20Like {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function transfer(address to, uint256 amount) external returns (bool);
    function burn(uint256 amount) external;
}

/// @title BridgeEscrow: the source side. Locks tokens per action id and unlocks them (compensation) at most once;
/// or burns them for an attested mint elsewhere. An id is used once: a late lock after an unlock reverts, so a
/// rebroadcast transaction can never lock again what compensation already returned.
contract BridgeEscrow {
    enum State { None, Locked, Unlocked, Burned }

    struct Deposit {
        State state;
        address depositor;
        address recipient;
        uint256 amount;
    }

    IERC20Like public immutable token;
    address public operator;
    mapping(bytes32 => Deposit) public deposits;

    event Locked(bytes32 indexed actionId, address indexed depositor, address recipient, uint256 amount);
    event Unlocked(bytes32 indexed actionId, address indexed depositor, uint256 amount);
    event Burned(bytes32 indexed actionId, bytes32 indexed messageId, address depositor, address recipient, uint256 amount);

    error NotOperator();
    error ActionIdUsed(bytes32 actionId);
    error NotLocked(bytes32 actionId);
    error ZeroAmount();

    constructor(address token_, address operator_) {
        token = IERC20Like(token_);
        operator = operator_;
    }

    function lock(bytes32 actionId, address recipient, uint256 amount) external {
        _take(actionId, recipient, amount, State.Locked);
        emit Locked(actionId, msg.sender, recipient, amount);
    }

    /// Returns a locked deposit to its depositor: the compensation of a lock.
    function unlock(bytes32 actionId) external {
        if (msg.sender != operator) revert NotOperator();
        Deposit storage deposit = deposits[actionId];
        if (deposit.state != State.Locked) revert NotLocked(actionId);
        deposit.state = State.Unlocked;
        require(token.transfer(deposit.depositor, deposit.amount), 'transfer failed');
        emit Unlocked(actionId, deposit.depositor, deposit.amount);
    }

    /// Burns tokens for a mint on another chain; the message id is what an attester signs.
    function burn(bytes32 actionId, address recipient, uint256 amount) external returns (bytes32 messageId) {
        _take(actionId, recipient, amount, State.Burned);
        token.burn(amount);
        messageId = keccak256(abi.encode(block.chainid, address(this), actionId, msg.sender, recipient, amount));
        emit Burned(actionId, messageId, msg.sender, recipient, amount);
    }

    function _take(bytes32 actionId, address recipient, uint256 amount, State state) internal {
        if (amount == 0) revert ZeroAmount();
        if (deposits[actionId].state != State.None) revert ActionIdUsed(actionId);
        deposits[actionId] = Deposit(state, msg.sender, recipient, amount);
        require(token.transferFrom(msg.sender, address(this), amount), 'transferFrom failed');
    }
}
