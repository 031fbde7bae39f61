// A producer thread filling a bounded queue, so that the consumer (the trainer) finds prepared items
// waiting instead of decoding them itself. Items come out in the order the producer made them, so the
// result does not depend on thread timing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace r2c {

template <typename T>
class Prefetcher {
  public:
    // `emit` hands one item over, blocking while `capacity` items wait; it returns false once the
    // consumer has gone, and the producer should then return. An exception thrown by the producer is
    // rethrown by next() after the items made before it.
    using Producer = std::function<void(const std::function<bool(T)>& emit)>;

    Prefetcher(std::size_t capacity, Producer produce) : capacity_(capacity < 1 ? 1 : capacity) {
        thread_ = std::thread([this, produce = std::move(produce)] {
            std::exception_ptr error;
            try {
                produce([this](T item) { return push(std::move(item)); });
            } catch (...) {
                error = std::current_exception();
            }
            std::lock_guard<std::mutex> lock(mutex_);
            error_ = error;
            finished_ = true;
            ready_.notify_all();
        });
    }

    ~Prefetcher() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
            space_.notify_all();
        }
        thread_.join();
    }

    Prefetcher(const Prefetcher&) = delete;
    Prefetcher& operator=(const Prefetcher&) = delete;

    // The next item, waiting for it if necessary; nullopt when the producer has finished.
    std::optional<T> next() {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !items_.empty() || finished_; });
        if (items_.empty()) {
            if (error_) std::rethrow_exception(error_);
            return std::nullopt;
        }
        T item = std::move(items_.front());
        items_.pop_front();
        space_.notify_one();
        return item;
    }

  private:
    bool push(T item) {
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [this] { return items_.size() < capacity_ || closed_; });
        if (closed_) return false;
        items_.push_back(std::move(item));
        ready_.notify_one();
        return true;
    }

    const std::size_t capacity_;
    std::mutex mutex_;
    std::condition_variable ready_, space_;
    std::deque<T> items_;
    bool finished_ = false, closed_ = false;
    std::exception_ptr error_;
    std::thread thread_;  // last: started after every other member exists
};

}  // namespace r2c
