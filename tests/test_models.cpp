// The five networks: parameter counts from the reference specification (the paper's Table V) and shapes.
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "models/networks.h"

using namespace r2c;

namespace {

std::int64_t count(const std::vector<std::shared_ptr<TensorImpl>>& leaves) {
    std::int64_t n = 0;
    for (const auto& t : leaves)
        n += shape_numel(t->shape);
    return n;
}

}  // namespace

TEST_CASE("generator parameter counts match the specification", "[models]") {
    struct Row {
        Method method;
        int q;
        std::int64_t total;
    };
    const Row rows[] = {{Method::Operational, 1, 302853},
                        {Method::Operational, 3, 906507},
                        {Method::Operational, 5, 1510161},
                        {Method::Convolutional, 1, 11383941},
                        {Method::ConvolutionalLight, 1, 302853}};
    for (const Row& r : rows) {
        Rng rng(0);
        INFO(method_name(r.method) << " q=" << r.q);
        CHECK(make_generator(r.method, r.q, rng)->num_parameters() == r.total);
    }
}

TEST_CASE("discriminator parameter counts match the specification", "[models]") {
    Rng rng(0);
    CHECK(make_discriminator(Method::Operational, 1, rng)->num_parameters() == 136513);
    CHECK(make_discriminator(Method::Operational, 3, rng)->num_parameters() == 409027);
    CHECK(make_discriminator(Method::Operational, 5, rng)->num_parameters() == 681541);
    // Layer sums of the specification's ConvDiscriminator and ConvCompDiscriminator.
    CHECK(make_discriminator(Method::Convolutional, 1, rng)->num_parameters() == 2765633);
    CHECK(make_discriminator(Method::ConvolutionalLight, 1, rng)->num_parameters() == 136513);
}

TEST_CASE("the class head depends on exactly the specification's classify-only parameters", "[models]") {
    struct Row {
        Method method;
        int q;
        std::int64_t classify;
        std::int64_t head;  // the Dense layer, which the restored image does not depend on
    };
    const Row rows[] = {{Method::Operational, 1, 299394, 258},
                        {Method::Operational, 3, 896130, 258},
                        {Method::Operational, 5, 1492866, 258},
                        {Method::Convolutional, 1, 6282818, 514},
                        {Method::ConvolutionalLight, 1, 299394, 258}};
    for (const Row& r : rows) {
        Rng rng(1);
        INFO(method_name(r.method) << " q=" << r.q);
        auto g = make_generator(r.method, r.q, rng);
        const GeneratorOutput out = g->forward(Tensor::uniform({1, 3, 16, 16}, -1, 1, rng));
        CHECK(count(reachable_leaves(out.probs)) == r.classify);
        CHECK(count(reachable_leaves(out.image)) == g->num_parameters() - r.head);
    }
}

TEST_CASE("networks map 3-channel images to images, class probabilities and 1/8-size patch maps",
          "[models]") {
    for (Method m : {Method::Operational, Method::Convolutional, Method::ConvolutionalLight}) {
        INFO(method_name(m));
        Rng rng(2);
        auto g = make_generator(m, 3, rng);
        auto d = make_discriminator(m, 3, rng);
        const Tensor x = Tensor::uniform({2, 3, 32, 24}, -1, 1, rng);
        NoGradGuard no_grad;
        const GeneratorOutput out = g->forward(x);
        CHECK(out.image.shape() == Shape{2, 3, 32, 24});
        CHECK(out.probs.shape() == Shape{2, 2});
        for (double v : out.image.to_vector())
            REQUIRE(std::abs(v) <= 1.0);
        const auto p = out.probs.to_vector();
        CHECK(p[0] + p[1] == Approx(1.0));
        CHECK(d->forward(x).shape() == Shape{2, 1, 4, 3});
    }
}

TEST_CASE("construction is reproducible from the seed", "[models]") {
    Rng a(5), b(5);
    auto g1 = make_generator(Method::Operational, 3, a);
    auto g2 = make_generator(Method::Operational, 3, b);
    for (std::size_t i = 0; i < g1->parameters().size(); ++i)
        CHECK(g1->parameters()[i].second.to_vector() == g2->parameters()[i].second.to_vector());
    CHECK_THROWS_WITH(parse_method("cnn"), Catch::Contains("cnn"));
}

TEST_CASE("at the paper's 256x256 the networks give 256x256 images and 32x32 patch maps", "[models]") {
    Rng rng(3);
    const Tensor x = Tensor::uniform({1, 3, 256, 256}, -1, 1, rng);
    NoGradGuard no_grad;
    for (Method m : {Method::Operational, Method::Convolutional, Method::ConvolutionalLight}) {
        INFO(method_name(m));
        const GeneratorOutput out = make_generator(m, 3, rng)->forward(x);
        CHECK(out.image.shape() == Shape{1, 3, 256, 256});
        CHECK(out.probs.shape() == Shape{1, 2});
        CHECK(make_discriminator(m, 3, rng)->forward(x).shape() == Shape{1, 1, 32, 32});
    }
}
