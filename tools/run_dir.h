// An output folder of `r2c train`: checkpoints (newest kept, older rotated out), the settings of the run,
// the per-iteration loss log, sample grids and the loss plot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/trainer.h"

namespace r2c::cli {

class RunDir {
  public:
    explicit RunDir(std::string root);  // creates root/ and root/checkpoints/, root/samples/

    const std::string& root() const { return root_; }
    std::string checkpoint_path(std::int64_t iteration) const;
    // Checkpoint files, oldest first (by the iteration in their name).
    std::vector<std::string> checkpoints() const;
    // Writes a checkpoint for the trainer's iteration, then deletes all but the newest `keep`. When the write
    // fails (e.g. the disk is full), nothing is deleted and the error names the checkpoint to resume from.
    void save_checkpoint(const Trainer& trainer, int keep) const;
    // Removes the partly written checkpoints a killed run left, then loads the newest checkpoint that
    // loads; returns false when there is none. A newer file that fails to load (e.g. damaged outside r2c)
    // is reported on stderr and the next older one is tried.
    bool resume(Trainer& trainer) const;

    // The loss log: a header line, then "iteration,epoch,lr,<terms...>" rows. Rows beyond `iteration`
    // (written after the checkpoint a resumed run starts from) are dropped.
    void start_log(const StepLog& columns_from, std::int64_t iteration) const;
    void append_log(std::int64_t iteration, std::int64_t epoch, double lr, const StepLog& log) const;
    std::string log_path() const { return root_ + "/losses.csv"; }

  private:
    std::string root_;
};

}  // namespace r2c::cli
