"""The training library: one optimizer step, optimizer and schedule, evaluation,
checkpoints, process groups and seeds, stop handling.  The commands in
:mod:`rdrop_paddle.commands` put these together; nothing here parses arguments."""
